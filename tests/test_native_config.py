"""The native stack's configs are the compose stack's files with addresses swapped."""

import configparser
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from lab.rules import RULE_FILES, groups
from lab.settings import Ports, read_dotenv
from lab.stack import ha_push
from lab.stack import native_config as cfg
from lab.stack.deps import VICTORIA_METRICS

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
    alertmanager=19093,
    alert_sink=19095,
    node_exporter=19100,
    otlp_receiver=18428,
)


def test_prometheus_targets_become_loopback_static_targets():
    config = cfg.prometheus_config(PORTS)
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "prometheus": ["127.0.0.1:19090"],
        "app": ["127.0.0.1:15000"],  # the compose file finds replicas by DNS
        "worker": ["127.0.0.1:18000"],
        "node": ["127.0.0.1:19100"],
    }
    assert not any("dns_sd_configs" in job for job in config["scrape_configs"])
    shared = yaml.safe_load(cfg.PROMETHEUS_YML.read_text())
    assert config["global"] == shared["global"]  # nothing else changed
    assert config["storage"] == shared["storage"]


def test_the_otlp_section_stays_with_prometheus_3():
    # Debian's Prometheus 2 refuses it; natively VictoriaMetrics receives OTLP.
    assert "otlp" in yaml.safe_load(cfg.PROMETHEUS_YML.read_text())
    assert "otlp" not in cfg.prometheus_config(PORTS)


def test_the_scrape_interval_can_be_shortened():
    assert cfg.prometheus_config(PORTS, "1s")["global"]["scrape_interval"] == "1s"


def test_prometheus_sends_its_alerts_to_the_native_alertmanager():
    (alertmanagers,) = cfg.prometheus_config(PORTS)["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"] == [{"targets": ["127.0.0.1:19093"]}]


def test_alertmanager_notifies_the_native_sink_and_changes_nothing_else():
    config = cfg.alertmanager_config(PORTS)
    shared = yaml.safe_load(cfg.ALERTMANAGER_YML.read_text())
    urls = {webhook["url"] for receiver in config["receivers"] for webhook in receiver["webhook_configs"]}
    assert urls == {"http://127.0.0.1:19095/webhook"}
    for receiver in shared["receivers"]:
        for webhook in receiver["webhook_configs"]:
            webhook["url"] = "http://127.0.0.1:19095/webhook"
    assert config == shared


def test_a_shorter_scrape_interval_shortens_the_alert_grouping_in_proportion():
    shared = yaml.safe_load(cfg.ALERTMANAGER_YML.read_text())["route"]
    route = cfg.alertmanager_config(PORTS, "1s")["route"]  # a fifth of prometheus.yml's 5s
    assert shared["group_wait"] == "10s" and route["group_wait"] == "2s"
    assert shared["group_interval"] == "1m" and route["group_interval"] == "12s"
    assert route["repeat_interval"] == shared["repeat_interval"]


def test_alertmanager_binds_loopback_alone_and_keeps_data_in_the_data_dir(tmp_path):
    flags = dict(option.partition("=")[::2] for option in cfg.alertmanager_argv(PORTS, tmp_path))
    assert flags["--web.listen-address"] == "127.0.0.1:19093"
    assert flags["--cluster.listen-address"] == ""  # else it gossips on 0.0.0.0:9094
    assert flags["--storage.path"].startswith(str(tmp_path))
    assert flags["--config.file"] == str(cfg.alertmanager_config_file(tmp_path))


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


def test_the_otlp_receiver_binds_loopback_and_keeps_data_in_the_data_dir(tmp_path):
    argv = cfg.otlp_receiver_argv(PORTS.otlp_receiver, tmp_path)
    flags = dict(option.partition("=")[::2] for option in argv)
    assert flags["-httpListenAddr"] == "127.0.0.1:18428"
    assert flags["-storageDataPath"] == str(tmp_path / "otlp-receiver" / "data")
    assert flags["-relabelConfig"] == str(cfg.otlp_relabel_file(tmp_path))
    assert str(tmp_path) in flags["-relabelConfig"]


def test_the_otlp_receiver_names_and_shows_series_as_prometheus_3_does(tmp_path):
    flags = dict(
        option.partition("=")[::2] for option in cfg.otlp_receiver_argv(PORTS.otlp_receiver, tmp_path)
    )
    assert "-opentelemetry.usePrometheusNaming" in flags
    # its default (30s) would hide the last six exports of each worker from every query
    assert flags["-search.latencyOffset"] == "0s"
    # deduplication would merge samples the lab counts
    assert not any(flag.startswith("-dedup") for flag in flags)


def test_resource_attributes_become_job_and_instance_and_the_rest_is_dropped():
    rules = cfg.otlp_relabel_config("")
    assert rules[0] == {"action": "labelmap", "regex": "service_name", "replacement": "job"}
    assert {"action": "labelmap", "regex": "service_instance_id", "replacement": "instance"} in rules
    (drop,) = [rule for rule in rules if rule.get("action") == "labeldrop"]
    assert drop == rules[-1]  # after the copies to job and instance
    assert drop["regex"] == "service_name|service_namespace|service_instance_id|telemetry_sdk_.*"


def test_the_apps_own_resource_attributes_are_dropped_too():
    (drop,) = [
        rule
        for rule in cfg.otlp_relabel_config("deployment.environment=lab, team-name=a%3Db,broken")
        if rule.get("action") == "labeldrop"
    ]
    assert drop["regex"].endswith("|telemetry_sdk_.*|deployment_environment|team_name")


@pytest.mark.processes
def test_victoria_metrics_accepts_the_relabel_config(tmp_path):
    if not VICTORIA_METRICS.exists():
        pytest.fail(f"{VICTORIA_METRICS} is missing: `make deps` fetches it (Debian's victoria-metrics)")
    relabel = tmp_path / "relabel.yml"
    relabel.write_text(yaml.safe_dump(cfg.otlp_relabel_config("deployment.environment=lab")))
    result = subprocess.run(
        [str(VICTORIA_METRICS), "-dryRun", f"-relabelConfig={relabel}"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_shortened_scrape_shortens_each_group_interval_in_proportion(tmp_path):
    """At 1 s scrapes (the tests'), the once-a-minute SLO groups run every 12 s: as many scrapes apart."""
    files = cfg.scaled_rule_files(tmp_path, "1s")
    assert sorted(Path(f).name for f in files) == sorted(path.name for path in RULE_FILES)
    scaled = {
        g["name"]: g.get("interval") for f in files for g in yaml.safe_load(Path(f).read_text())["groups"]
    }
    assert scaled == {g["name"]: ("12s" if "interval" in g else None) for g in groups()}
    assert {g["interval"] for g in groups() if "interval" in g} == {"1m"}


def sections(conf: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read_string(conf)
    return {name: dict(parser[name]) for name in parser.sections()}


def test_the_relay_takes_the_carbon_port_and_sends_to_a_cache_per_loopback_host(tmp_path):
    relay = sections(ha_push.relay_config(PORTS, tmp_path))["relay"]
    assert (relay["LINE_RECEIVER_INTERFACE"], relay["LINE_RECEIVER_PORT"]) == ("127.0.0.1", "12003")
    assert (relay["PICKLE_RECEIVER_INTERFACE"], relay["PICKLE_RECEIVER_PORT"]) == ("127.0.0.1", "12004")
    # one host string per cache: DIVERSE_REPLICAS keeps the two copies of a series on two of them
    destinations = [d.strip() for d in relay["DESTINATIONS"].split(",")]
    assert destinations == ["127.0.0.2:12004", "127.0.0.3:12004", "127.0.0.4:12004"]
    assert (relay["RELAY_METHOD"], relay["REPLICATION_FACTOR"]) == ("consistent-hashing", "2")
    assert relay["STORAGE_DIR"] == str(tmp_path / "carbon-relay" / "graphite")


def test_each_cache_listens_on_its_own_host_and_writes_under_its_own_node(tmp_path):
    for index, host in enumerate(ha_push.GRAPHITE_HOSTS):
        cache = sections(ha_push.cache_config(PORTS, tmp_path, index))["cache"]
        interfaces = {cache[key] for key in cache if key.endswith("_INTERFACE")}
        assert interfaces == {host}, index
        assert (cache["PICKLE_RECEIVER_PORT"], cache["CACHE_QUERY_PORT"]) == ("12004", "17002")
        assert cache["LOCAL_DATA_DIR"] == str(tmp_path / f"graphite-{index + 1}" / "graphite" / "whisper")


def test_a_graphite_web_node_reads_its_cache_and_asks_the_others(tmp_path):
    webs = [18080, 18081, 18082]
    settings = {}
    text = cfg.graphite_web_settings(
        PORTS, tmp_path, "secret", ha_push.GRAPHITE_HOSTS[1], ha_push.cluster_servers(webs, 1)
    )
    exec(compile(text, "lab_graphite_settings.py", "exec"), settings)  # the module graphite-web imports
    assert settings["CLUSTER_SERVERS"] == ["127.0.0.1:18080", "127.0.0.1:18082"]
    assert settings["REMOTE_STORE_MERGE_RESULTS"] is True
    assert settings["CARBONLINK_HOSTS"] == ["127.0.0.3:17002:a"]
    single = {}
    exec(compile(cfg.graphite_web_settings(PORTS, tmp_path, "secret"), "single.py", "exec"), single)
    assert "CLUSTER_SERVERS" not in single and single["CARBONLINK_HOSTS"] == ["127.0.0.1:17002:a"]


def test_the_statsd_nodes_flush_to_the_relay_behind_a_proxy_on_the_statsd_port():
    nodes = [(18127, 18128), (18129, 18130)]
    proxy = ha_push.proxy_config(PORTS, nodes)
    assert (proxy["host"], proxy["port"], proxy["mgmt_port"]) == ("127.0.0.1", 18125, 18126)
    assert proxy["nodes"] == [
        {"host": "127.0.0.1", "port": port, "adminport": admin} for port, admin in nodes
    ]
    for port, admin in nodes:
        node = ha_push.node_config(PORTS, 1, port, admin)
        assert (node["graphiteHost"], node["graphitePort"]) == ("127.0.0.1", 12003)  # the relay
        assert (node["port"], node["mgmt_port"]) == (port, admin)
        assert node["servers"] == [{"server": "./servers/udp", "address": "127.0.0.1", "port": port}]
        assert node["deleteIdleStats"] is True and node["deleteGauges"] is False
        assert node["flushInterval"] == 1000
    with pytest.raises(ValueError, match="2 nodes, the native topology runs 3"):
        ha_push.proxy_config(PORTS, [*nodes, (18131, 18132)])


def test_node_exporter_runs_the_compose_collectors_on_loopback():
    argv = cfg.node_exporter_argv(PORTS)
    assert argv == [
        "--collector.disable-defaults",
        "--collector.cpu",
        "--collector.meminfo",
        "--collector.diskstats",
        "--collector.netdev",
        "--collector.loadavg",
        "--web.listen-address=127.0.0.1:19100",
    ]


def test_collectd_writes_to_the_native_carbon_at_the_flush_interval(tmp_path):
    written = cfg.collectd_config(PORTS, tmp_path, interval_seconds=1).splitlines()
    assert written[:2] == [
        f'BaseDir "{tmp_path / "collectd"}"',
        f'PIDFile "{tmp_path / "run" / "collectd.pid"}"',
    ]
    # the rest is the compose file's, line for line, but the carbon address and the interval
    swapped = {
        '    Host "graphite"': '    Host "127.0.0.1"',
        '    Port "2003"': '    Port "12003"',
        "Interval 10": "Interval 1",
        '  SocketFile "/var/lib/collectd/collectd.sock"': f'  SocketFile "{tmp_path / "run/collectd.sock"}"',
    }
    shared = cfg.COLLECTD_CONF.read_text().splitlines()
    assert set(swapped) <= set(shared)
    assert written[2:] == [swapped.get(line, line) for line in shared]


@pytest.mark.processes
def test_collectd_starts_with_the_derived_config(tmp_path):
    """`collectd -t` parses the config and loads every plugin, as the runner would start it."""
    (tmp_path / "collectd").mkdir()
    (tmp_path / "run").mkdir()
    config = tmp_path / "collectd.conf"
    config.write_text(cfg.collectd_config(PORTS, tmp_path, interval_seconds=1))
    checked = subprocess.run(["collectd", "-t", "-C", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

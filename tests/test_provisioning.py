"""Grafana's provisioned datasources agree with the backends they point at."""

from urllib.parse import urlsplit

import yaml

from app import config
from lab.settings import PROMETHEUS_YML, duration_seconds

from .helpers import ROOT

DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml"


def datasources() -> dict[str, dict]:
    """uid -> the provisioned datasource."""
    return {source["uid"]: source for source in yaml.safe_load(DATASOURCES.read_text())["datasources"]}


def test_the_prometheus_datasource_knows_the_scrape_interval():
    prometheus = yaml.safe_load(PROMETHEUS_YML.read_text())
    # Grafana's $__rate_interval is at least 4x timeInterval: set to anything but the
    # scrape interval, a rate() either spans too few scrapes or smooths more than asked.
    assert datasources()["prometheus"]["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]
    # and every job scrapes at that one interval
    assert [job["job_name"] for job in prometheus["scrape_configs"] if "scrape_interval" in job] == []


def test_the_otel_datasource_reads_the_prometheus_the_app_pushes_to():
    otel, prometheus = datasources()["otel"], datasources()["prometheus"]
    assert otel["type"] == "prometheus"
    # Prometheus 3 receives OTLP itself: in compose the OTLP series are in the scraping Prometheus.
    assert otel["url"] == prometheus["url"]
    receiver = urlsplit(config.DEFAULTS["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"])
    assert f"{receiver.scheme}://{receiver.netloc}" == otel["url"]
    assert not otel.get("isDefault")


def test_the_otel_datasource_knows_the_export_interval():
    # Each worker pushes every OTEL_METRIC_EXPORT_INTERVAL ms: $__rate_interval then spans 4 of its pushes.
    interval = duration_seconds(datasources()["otel"]["jsonData"]["timeInterval"])
    assert interval == config.DEFAULTS["OTEL_METRIC_EXPORT_INTERVAL"] / 1000


def test_the_alertmanager_datasource_is_the_one_prometheus_sends_to():
    alertmanager = datasources()["alertmanager"]
    assert alertmanager["type"] == "alertmanager"
    assert alertmanager["jsonData"]["implementation"] == "prometheus"
    # The lab's alerts are Prometheus's rules: Grafana sends none of its own there.
    assert alertmanager["jsonData"]["handleGrafanaManagedAlerts"] is False
    prometheus = yaml.safe_load(PROMETHEUS_YML.read_text())
    (targets,) = [
        config["targets"] for config in prometheus["alerting"]["alertmanagers"][0]["static_configs"]
    ]
    assert alertmanager["url"] == f"http://{targets[0]}"


def test_the_prometheus_datasource_names_its_alertmanager_and_lists_its_rules_once():
    # The dashboards' alert list reads the alerting rules of the `prometheus` datasource, whose
    # alerts go to the `alertmanager` one; the `otel` datasource is the same Prometheus in compose.
    assert datasources()["prometheus"]["jsonData"]["alertmanagerUid"] == "alertmanager"
    assert datasources()["prometheus"]["jsonData"]["manageAlerts"] is True
    assert datasources()["otel"]["jsonData"]["manageAlerts"] is False

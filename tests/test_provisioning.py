"""Grafana's provisioned datasources agree with the backends they point at."""

import yaml

from .helpers import ROOT

PROMETHEUS_YML = ROOT / "prometheus" / "prometheus.yml"
DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml"


def test_the_prometheus_datasource_knows_the_scrape_interval():
    prometheus = yaml.safe_load(PROMETHEUS_YML.read_text())
    datasources = {source["uid"]: source for source in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    # Grafana's $__rate_interval is at least 4x timeInterval: set to anything but the
    # scrape interval, a rate() either spans too few scrapes or smooths more than asked.
    assert datasources["prometheus"]["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]
    # and every job scrapes at that one interval
    assert [job["job_name"] for job in prometheus["scrape_configs"] if "scrape_interval" in job] == []

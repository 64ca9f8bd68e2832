"""lab/settings.py: the stack's numbers, read once from the files the containers mount."""

import json

import yaml

from lab import settings


def test_the_intervals_are_the_config_files():
    scrape = yaml.safe_load(settings.PROMETHEUS_YML.read_text())["global"]["scrape_interval"]
    assert settings.prometheus_scrape_seconds() == settings.duration_seconds(scrape) == 5
    flush_ms = json.loads(settings.STATSD_CONFIG_JS.read_text())["flushInterval"]
    assert settings.statsd_flush_seconds() == flush_ms // 1000 == 10


def test_durations_in_prometheus_units():
    texts = ("500ms", "5s", "2m", "1h", "30d")
    assert [settings.duration_seconds(text) for text in texts] == [0.5, 5, 120, 3600, 2592000]


def test_a_route_is_named_as_app_labels_names_it():
    assert settings.route(settings.ROUTE_UNDER_TEST) == ("/", "index")
    assert settings.route("/database/").endpoint == "database"

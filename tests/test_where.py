"""`lab where` (lab/where/): each link of a name's chain, found where it is."""

import json
import re

import pytest

from app import signals
from lab.__main__ import main
from lab.settings import ROOT
from lab.where.chain import chain
from lab.where.subjects import OTLP, PULL, STATSD, UnknownName, resolve


def line_of(path: str, pattern: str) -> int:
    lines = (ROOT / path).read_text().splitlines()
    (number,) = [i for i, text in enumerate(lines, 1) if re.search(pattern, text)]
    return number


def test_every_name_of_a_scraped_metric_means_it():
    for name in ("http_requests_total", "HTTP_REQUESTS", "http_requests"):
        (subject,) = resolve(name)
        assert (subject.constant, subject.pipeline) == ("HTTP_REQUESTS", PULL)
    (histogram,) = resolve("http_request_duration_seconds_bucket")
    assert histogram.constant == "HTTP_REQUEST_DURATION"


def test_a_statsd_name_is_known_with_or_without_its_prefix_and_as_its_graphite_series():
    for name in ("lab.app.http.requests", "http.requests", "stats_counts.lab.app.http.requests.*.*.*"):
        (subject,) = resolve(name)
        assert (subject.constant, subject.pipeline) == ("STATSD_REQUESTS", STATSD)
    assert resolve("lab.app.http.requests")[0].graphite == (
        "stats_counts.lab.app.http.requests.*.*.*",
        "stats.lab.app.http.requests.*.*.*",
    )


def test_an_otlp_instrument_is_known_by_its_name_and_by_its_prometheus_series():
    for name in ("http.server.request.duration", "http_server_request_duration_seconds_count"):
        (subject,) = resolve(name)
        assert (subject.constant, subject.pipeline) == ("OTEL_REQUEST_DURATION", OTLP)


def test_a_golden_signal_means_its_names_in_each_pipeline():
    assert [s.constant for s in resolve("latency")] == [
        "HTTP_REQUEST_DURATION",
        "STATSD_LATENCY",
        "OTEL_REQUEST_DURATION",
    ]
    assert {s.pipeline for s in resolve("saturation")} == {PULL, STATSD, OTLP}


def test_a_name_outside_the_contract_gets_the_closest_names():
    with pytest.raises(UnknownName, match=r"'http_request_totl'.*closest: http_requests_total"):
        resolve("http_request_totl")


def test_the_chain_of_http_requests_total():
    found = chain(resolve("http_requests_total")[0])
    assert found.defined == f"app/signals.py:{line_of('app/signals.py', r'^HTTP_REQUESTS = ')}"
    assert found.emitted_by == [f"app/pull.py:{line_of('app/pull.py', r'^HTTP_REQUESTS = Counter')}"]
    panels = {(p["dashboard"], p["panel"]): p["via"] for p in found.panels}
    assert panels[("pull-vs-push.json", "Traffic (scrape)")] is None
    # The SLO panels read it only through the recording rules: found by following them.
    budget = "Availability SLO 99.5 %: error budget left (30d)"
    assert panels[("golden-signals-prometheus.json", budget)] == "job:slo_availability_errors:ratio_rate30d"
    assert not any(board == "golden-signals-graphite.json" for board, _ in panels)
    rules = {(r["kind"], r["name"]): r for r in found.rules}
    assert rules[("record", "route:http_requests:rate5m")]["via"] is None
    page = rules[("alert", "AvailabilitySLOFastBurn")]
    assert page["via"] == "job:slo_availability_errors:ratio_rate1h"
    assert (
        page["at"]
        == f"prometheus/rules/alerts.yml:{line_of('prometheus/rules/alerts.yml', 'AvailabilitySLOFastBurn')}"
    )
    assert ("alert", "HighLatency") not in rules  # reads the latency histogram, not the counter
    # The exactness test asks through the contract's queries (stack.pull.total): no literal name.
    assert any(t.endswith(" test_known_traffic_appears_exactly_in_all_three_pipelines") for t in found.tests)
    assert {s["id"] for s in found.scenarios} >= {"udp-loss", "no-multiprocess", "recycling-cleanup"}


def test_the_chain_of_a_statsd_name_has_no_prometheus_rules():
    found = chain(resolve("lab.app.http.requests")[0])
    assert found.emitted_by == [f"app/push.py:{line_of('app/push.py', r'STATSD_REQUESTS.format')}"]
    assert found.rules == []
    assert {p["dashboard"] for p in found.panels} == {"golden-signals-graphite.json", "pull-vs-push.json"}
    assert any(t.endswith(" test_known_traffic_appears_exactly_in_all_three_pipelines") for t in found.tests)
    assert {s["id"] for s in found.scenarios} >= {"udp-loss", "flush-vs-retention"}


def test_the_cli_prints_the_chain_and_json_for_scripts(capsys):
    assert main(["where", "http_requests_total"]) == 0
    out = capsys.readouterr().out
    for link in ("defined", "emitted by", "dashboards", "rules", "tests", "scenarios"):
        assert re.search(rf"^  {link} ", out, re.M), link
    assert main(["where", "--json", "errors"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [s["subject"]["constant"] for s in answer["subjects"]] == [
        "HTTP_REQUESTS",
        "STATSD_REQUESTS",
        "OTEL_REQUEST_DURATION",
    ]
    assert answer["subjects"][0]["defined"].startswith("app/signals.py:")


def test_the_cli_names_an_unknown_name(capsys):
    assert main(["where", "lab.app.http.request"]) == 2
    err = capsys.readouterr().err
    assert "'lab.app.http.request' is no name of the contract" in err and "lab.app.http.requests" in err


def test_every_subject_of_the_contract_has_its_definition_and_a_recorder():
    for constant in (c for c in dir(signals) if c.isupper()):
        value = getattr(signals, constant)
        if value in signals.PULL_METRICS or value in signals.OTEL_INSTRUMENTS:
            (subject,) = [s for s in resolve(constant) if s.constant == constant]
            found = chain(subject)
            assert found.defined.startswith("app/signals.py:") and found.emitted_by, constant

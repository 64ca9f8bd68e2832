"""`lab report`: an experiment's report redrawn from its result.json alone, with no
backend; a value a backend did not have (null) reads "n/a", a result from before the
OTLP push redraws with the two pipelines it has, one from before the alert times says
they were not recorded, and a file that is not an experiment's result is named in a
message, without a traceback."""

import copy
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from lab.__main__ import main
from lab.experiment import report

STARTED = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def phase(name, start, faults, counted, latency, detected, saturation):
    """A phase of 2 s at 20 requests/s, as `lab experiment` writes it; `counted`: truth, then each backend."""
    truth, prometheus, graphite, otel = counted
    return {
        "name": name,
        "faults": faults,
        "start": STARTED + start,
        "end": STARTED + start + 2,
        "seconds": 2.0,
        "sent": 40,
        "truth": truth,
        "prometheus": prometheus,
        "graphite": graphite,
        "otel": otel,
        "latency_ms": latency,
        "detected_after_seconds": detected,
        "saturation_peak": {"prometheus": saturation[0], "otel": saturation[1]},
    }


def counts(total, errors):
    return {"total": total, "errors": errors, "error_ratio": errors / total if total else None}


def firing(alertname, severity, fired, resolved, notified=None, resolved_notified=None, not_notified=None):
    """A stretch an alert fired, its times in seconds after STARTED (fired None: already firing)."""

    def at(seconds):
        return None if seconds is None else STARTED + seconds

    return {
        "alertname": alertname,
        "severity": severity,
        "already_firing": fired is None,
        "fired_at": at(fired),
        "resolved_at": at(resolved),
        "notified_at": at(notified),
        "resolved_notified_at": at(resolved_notified),
        "not_notified": not_notified,
    }


def latency(truth, prometheus, graphite, otel):
    """p95 and p99 of each source: (p95, p99) pairs; Graphite's as ((mean, max), (mean, max))."""
    (g95, g99) = graphite
    return {
        "truth": {"p95": truth[0], "p99": truth[1]},
        "prometheus": {"p95": prometheus[0], "p99": prometheus[1]},
        "graphite": {
            "p95 mean of flushes": g95[0],
            "p95 max of flushes": g95[1],
            "p99 mean of flushes": g99[0],
            "p99 max of flushes": g99[1],
        },
        "otel": {"p95": otel[0], "p99": otel[1]},
    }


RESULT = {
    "scenario": {
        "seconds": {"baseline": 2, "error burst": 2, "latency burst": 2, "recovery": 2},
        "rate": 20,
        "error_rate": 0.3,
        "latency_ms": 200,
    },
    "urls": {
        "app": "http://app:8000",
        "prometheus": "http://prom:9090",
        "graphite": "http://graphite:8080",
        "otel": "http://otlp:8428",
        "alertmanager": "http://am:9093",
        "alert_sink": "http://sink:9095",
    },
    "scrape_seconds": 1.0,
    "flush_seconds": 1.0,
    "export_seconds": 5.0,
    "started": STARTED,
    "finished": STARTED + 14,
    "phases": [
        phase(
            "baseline",
            1,
            None,
            (counts(40, 0), counts(40, 0), counts(40, 0), counts(40, 0)),
            # Prometheus had no p99 (null): "n/a", not 0
            latency((4.2, 6.8), (4.8, None), ((3.9, 5.1), (5.6, 6.9)), (4.9, 9.7)),
            {},
            (0.25, 0.25),
        ),
        phase(
            "error burst",
            4,
            {"routes": {"/": {"error_rate": 0.3}}},
            (counts(40, 10), counts(40, 10), counts(40, 10), counts(40, 10)),
            latency((4.4, 7.0), (4.9, 9.6), ((4.0, 5.2), (5.6, 7.1)), (4.9, 9.6)),
            {"prometheus": 1.2, "graphite": 1.7, "otel": 5.4},
            (0.25, 0.5),
        ),
        phase(
            "latency burst",
            7,
            {"routes": {"/": {"latency_ms": 200}}},
            (counts(40, 0), counts(40, 0), counts(40, 0), counts(40, 0)),
            # The run of issue 13: the client waited in gunicorn's queue, which no backend sees.
            latency((353.2, 420.5), (242.0, 248.0), ((195.3, 201.4), (205.1, 230.6)), (240.8, None)),
            {"prometheus": 2.6, "graphite": None, "otel": 6.1},
            (1.0, None),  # the OTLP receiver had no saturation in this phase
        ),
        phase(
            "recovery",
            10,
            None,
            # a datagram lost: shown against the truth; and OTLP lost a worker's last export
            (counts(40, 0), counts(40, 0), counts(39, 0), counts(37, 0)),
            latency((4.3, 6.4), (4.8, 9.6), ((3.8, 5.0), (5.4, 6.6)), (4.7, 9.5)),
            {},
            (0.25, 0.25),
        ),
    ],
    "charts": {
        name: {
            "truth": [[1.5, value], [2.5, value], [4.5, value]],
            "prometheus": [[2.0, value], [3.0, None], [4.0, value]],  # null: a gap in the line
            "graphite": [[2.0, value], [3.0, value], [4.0, value]],
            "otel": [[2.0, value], [7.0, value]],
        }
        for name, value in (("traffic", 20.0), ("errors", 25.0), ("latency", 4.9))
    },
    # The error burst starts at STARTED + 4, the latency burst at STARTED + 7.
    "alerts": [
        # from an earlier fault: resolved in the baseline, before the first burst
        firing("HighLatency", "warning", None, 2.5, resolved_notified=3.0),
        firing("AvailabilitySLOFastBurn", "page", 5.0, None, notified=7.4),
        firing(
            "AvailabilitySLOSlowBurn",
            "ticket",
            5.0,
            None,
            not_notified="inhibited by AvailabilitySLOFastBurn",
        ),
        firing(
            "Saturation",
            "warning",
            8.2,
            9.0,
            not_notified="Alertmanager still holds it (active) at the end of the run",
        ),
    ],
    "alerts_missing": {},
}


def before_alerts(result: dict) -> dict:
    """`result` as `lab experiment` wrote it before it recorded alerts: no alert times, no their URLs."""
    old = copy.deepcopy(result)
    del old["alerts"], old["alerts_missing"], old["urls"]["alertmanager"], old["urls"]["alert_sink"]
    return old


def before_otel(result: dict) -> dict:
    """`result` as `lab experiment` wrote it before the OTLP push: no otel figures, no saturation."""
    old = before_alerts(result)
    del old["urls"]["otel"], old["export_seconds"]
    for each in old["phases"]:
        del each["otel"], each["latency_ms"]["otel"], each["saturation_peak"]
        each["detected_after_seconds"].pop("otel", None)
    for sources in old["charts"].values():
        del sources["otel"]
    return old


def write_result(tmp_path, result: dict):
    path = tmp_path / "experiment" / "result.json"
    path.parent.mkdir()
    path.write_text(json.dumps(result, indent=2))
    return path


@pytest.fixture
def result_json(tmp_path):
    return write_result(tmp_path, RESULT)


# Each table of report.md, by its heading: its header and the rows RESULT must give.
TABLES = {
    "## Totals (requests to `/` answered)": [
        "| phase | seconds | truth | Prometheus | Graphite | OTLP |",
        "| --- | --- | --- | --- | --- | --- |",
        "| baseline | 2.0 | 40 | 40 | 40 | 40 |",
        "| error burst | 2.0 | 40 | 40 | 40 | 40 |",
        "| latency burst | 2.0 | 40 | 40 | 40 | 40 |",
        "| recovery | 2.0 | 40 | 40 | **39** (-1) | **37** (-3) |",
    ],
    "## Error ratio (5xx / all)": [
        "| phase | injected | truth | Prometheus | Graphite | OTLP |",
        "| --- | --- | --- | --- | --- | --- |",
        "| baseline | 0.0 % | 0.0 % | 0.0 % | 0.0 % | 0.0 % |",
        "| error burst | 30.0 % | 25.0 % | 25.0 % | 25.0 % | 25.0 % |",
        "| latency burst | 0.0 % | 0.0 % | 0.0 % | 0.0 % | 0.0 % |",
        "| recovery | 0.0 % | 0.0 % | 0.0 % | 0.0 % | 0.0 % |",
    ],
    "## Latency (ms)": [
        "| phase | truth p95 | Prometheus p95 | Graphite p95 (mean / max of flushes) | OTLP p95 "
        "| truth p99 | Prometheus p99 | Graphite p99 (mean / max of flushes) | OTLP p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        "| baseline | 4 | 5 | 4 / 5 | 5 | 7 | n/a | 6 / 7 | 10 |",
        "| error burst | 4 | 5 | 4 / 5 | 5 | 7 | 10 | 6 / 7 | 10 |",
        "| latency burst | 353 | 242 | 195 / 201 | 241 | 420 | 248 | 205 / 231 | n/a |",
        "| recovery | 4 | 5 | 4 / 5 | 5 | 6 | 10 | 5 / 7 | 10 |",
    ],
    "## Detection delay (seconds after the burst started)": [
        "| burst | Prometheus | Graphite | OTLP | shown when |",
        "| --- | --- | --- | --- | --- |",
        "| error burst | 1.2 | 1.7 | 5.4 | the error ratio reaches 15.0 % |",
        "| latency burst | 2.6 | not shown | 6.1 | p95 reaches 100 ms |",
    ],
    "## Alerts (seconds after the burst started)": [
        "| alert | severity | burst | fired | reached the sink | resolved | resolved at sink |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        # Already firing when the run started: said so, never "fired at 0"; before the first burst: < 0.
        "| HighLatency | warning | error burst | already firing | before the run | -1.5 | -1.0 |",
        "| AvailabilitySLOFastBurn | page | error burst | 1.0 | 3.4 | still firing | - |",
        "| AvailabilitySLOSlowBurn | ticket | error burst | 1.0 | not notified: inhibited by "
        "AvailabilitySLOFastBurn | still firing | - |",
        "| Saturation | warning | latency burst | 1.2 | not notified: Alertmanager still holds it (active) "
        "at the end of the run | 2.0 | none |",
    ],
}
# Issue 13: the latency burst's client p95 against every backend's, and the signal that shows the wait.
QUEUEING_NOTE = (
    "In the latency burst the client's p95 (353 ms) is far above what the backends report "
    "(Prometheus 242 ms, Graphite 201 ms, OTLP 241 ms): requests waited in gunicorn's queue until a worker "
    "took them, and every server-side timer starts only then, so no backend's latency shows that wait. "
    "Saturation does: requests in flight over capacity peaked at 100.0 % (Prometheus). At 100 % every "
    "worker is busy and the next request queues (the dashboards' Saturation panel)."
)


def table(lines: list[str], heading: str, rows: int) -> list[str]:
    """The header, rule and `rows` rows below a heading of report.md."""
    start = lines.index(heading) + 2  # below the blank line
    return lines[start : start + 2 + rows]


def test_the_report_is_redrawn_from_the_json_alone(result_json, tmp_path, capsys):
    out = tmp_path / "redrawn"
    assert main(["report", str(result_json), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"report: {out / 'report.md'}\n"
    lines = (out / "report.md").read_text().splitlines()
    assert lines[0] == "# Pull vs StatsD push vs OTLP push: experiment report"
    assert lines[2] == (
        "2023-11-14 22:13:20 UTC. App http://app:8000, Prometheus http://prom:9090 (scrapes every 1 s), "
        "Graphite http://graphite:8080 (StatsD flushes every 1 s), "
        "OTLP receiver http://otlp:8428 (each worker exports every 5 s), "
        "Alertmanager http://am:9093, webhook sink http://sink:9095."
    )
    for heading, rows in TABLES.items():
        assert table(lines, heading, len(rows) - 2) == rows, heading
    for name in ("traffic", "errors", "latency"):
        assert f"![{name}]({name}.png)" in lines
        height, width, _ = plt.imread(out / f"{name}.png").shape
        assert (width, height) == (1000, 450), name


def test_the_report_says_what_no_backend_saw_with_the_run_s_numbers(result_json):
    assert main(["report", str(result_json)]) == 0
    lines = (result_json.parent / "report.md").read_text().splitlines()
    # Below the latency table, once: no other phase's client waited longer than the backends say.
    assert [line for line in lines if "gunicorn's queue" in line] == [QUEUEING_NOTE]
    assert lines.index(QUEUEING_NOTE) == lines.index("## Latency (ms)") + 9


@pytest.mark.parametrize(
    ("phase_index", "source", "p95"),
    [
        (2, "otel", 300.0),  # a backend near the client: interpolation in a bucket, not a queue
        (0, "truth", 9.0),  # 80 % above, but 4 ms: the client's own HTTP overhead
    ],
    ids=["a backend near the client", "a few ms above"],
)
def test_the_note_needs_the_client_well_above_every_backend(tmp_path, phase_index, source, p95):
    result = copy.deepcopy(RESULT)
    result["phases"][2]["latency_ms"]["truth"]["p95"] = 100.0  # no note from RESULT's own burst
    result["phases"][phase_index]["latency_ms"][source]["p95"] = p95
    assert main(["report", str(write_result(tmp_path, result))]) == 0
    assert "gunicorn's queue" not in (tmp_path / "experiment" / "report.md").read_text()


def redraw(tmp_path, capsys, result: dict) -> tuple[Path, str]:
    """`lab report` of `result` written to a file: the report's directory and report.md's text."""
    path = write_result(tmp_path, result)
    assert main(["report", str(path)]) == 0
    assert capsys.readouterr().err == ""
    return path.parent, (path.parent / "report.md").read_text()


def test_a_result_from_before_the_otlp_push_redraws_with_its_two_pipelines(tmp_path, capsys):
    out, text = redraw(tmp_path, capsys, before_otel(RESULT))
    lines = text.splitlines()
    assert lines[0] == "# Pull vs StatsD push: experiment report"
    assert lines[2] == (
        "2023-11-14 22:13:20 UTC. App http://app:8000, Prometheus http://prom:9090 (scrapes every 1 s), "
        "Graphite http://graphite:8080 (StatsD flushes every 1 s)."
    )
    assert table(lines, "## Totals (requests to `/` answered)", 4) == [
        "| phase | seconds | truth | Prometheus | Graphite |",
        "| --- | --- | --- | --- | --- |",
        "| baseline | 2.0 | 40 | 40 | 40 |",
        "| error burst | 2.0 | 40 | 40 | 40 |",
        "| latency burst | 2.0 | 40 | 40 | 40 |",
        "| recovery | 2.0 | 40 | 40 | **39** (-1) |",
    ]
    assert table(lines, "## Detection delay (seconds after the burst started)", 2)[2:] == [
        "| error burst | 1.2 | 1.7 | the error ratio reaches 15.0 % |",
        "| latency burst | 2.6 | not shown | p95 reaches 100 ms |",
    ]
    assert "OTLP" not in text
    # Its queueing note names the signal, with no peak the file does not have.
    assert (
        "(Prometheus 242 ms, Graphite 201 ms): requests waited in gunicorn's queue" in text
        and "Saturation does: requests in flight over capacity. At 100 %" in text
    )
    for name in ("traffic", "errors", "latency"):
        assert (out / f"{name}.png").exists()


def test_a_result_from_before_the_alert_times_says_they_were_not_recorded(tmp_path, capsys):
    _, text = redraw(tmp_path, capsys, before_alerts(RESULT))
    lines = text.splitlines()
    assert lines[2].endswith("OTLP receiver http://otlp:8428 (each worker exports every 5 s).")
    heading = lines.index("## Alerts (seconds after the burst started)")
    assert lines[heading + 2] == (
        "Not recorded: this result.json is from before `lab experiment` recorded alerts."
    )
    assert "**Alerts**" not in text  # no explanation of times it does not have


def test_a_run_with_no_alert_says_so():
    assert "No alert fired during the run." in report.markdown({**RESULT, "alerts": []})


def test_a_service_that_did_not_answer_leaves_its_times_unknown_and_says_why():
    sink_down = "http://sink:9095/notifications?since=1700000000.0 does not answer (ConnectionError)"
    result = {
        **RESULT,
        "alerts": [
            firing("AvailabilitySLOFastBurn", "page", 5.0, 9.0),
            firing("HighLatency", "warning", None, 2.5),
        ],
        "alerts_missing": {"alert_sink": sink_down},
    }
    lines = report.markdown(result).splitlines()
    assert table(lines, "## Alerts (seconds after the burst started)", 2)[2:] == [
        "| AvailabilitySLOFastBurn | page | error burst | 1.0 | not known | 5.0 | not known |",
        "| HighLatency | warning | error burst | already firing | before the run | -1.5 | not known |",
    ]
    assert f"No notification times: the webhook sink gave none ({sink_down})." in lines


def test_the_report_goes_beside_the_json_by_default(result_json):
    assert main(["report", str(result_json)]) == 0
    assert sorted(path.name for path in result_json.parent.iterdir()) == [
        "errors.png",
        "latency.png",
        "report.md",
        "result.json",
        "traffic.png",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read it: No such file or directory"),
        (
            "{'phases': []",
            "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            "[1, 2]",
            "not a `lab experiment` result.json: "
            "no scenario, urls, scrape_seconds, flush_seconds, started, phases, charts",
        ),
        (
            json.dumps({key: value for key, value in RESULT.items() if key != "charts"}),
            "not a `lab experiment` result.json: no charts",
        ),
        (
            json.dumps({**RESULT, "phases": [{"name": "baseline"}]}),
            "not a `lab experiment` result.json: no phases[0].start, phases[0].end, phases[0].seconds, "
            "phases[0].truth, phases[0].prometheus, phases[0].graphite, phases[0].latency_ms, "
            "phases[0].detected_after_seconds",
        ),
        (
            json.dumps({key: value for key, value in RESULT.items() if key != "export_seconds"}),
            "not a `lab experiment` result.json: no export_seconds",
        ),
        (
            json.dumps({**RESULT, "alerts": [{"alertname": "AvailabilitySLOFastBurn", "severity": "page"}]}),
            "not a `lab experiment` result.json: no alerts[0].already_firing, alerts[0].fired_at, "
            "alerts[0].resolved_at, alerts[0].notified_at, alerts[0].resolved_notified_at, "
            "alerts[0].not_notified",
        ),
        (
            json.dumps({key: value for key, value in RESULT.items() if key != "alerts_missing"}),
            "not a `lab experiment` result.json: no alerts_missing",
        ),
    ],
    ids=[
        "missing",
        "not JSON",
        "not an object",
        "no charts",
        "a phase without its figures",
        "OTLP figures without their interval",
        "an alert without its times",
        "alert times without what was missing",
    ],
)
def test_a_file_that_is_no_result_is_named(tmp_path, capsys, content, message):
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    assert main(["report", str(path)]) == 2
    assert capsys.readouterr() == ("", f"lab report: {path}: {message}\n")
    assert not (tmp_path / "report.md").exists()

"""`lab report`: an experiment's report redrawn from its result.json alone, with no
backend; a value a backend did not have (null) reads "n/a", and a file that is not
an experiment's result is named in a message, without a traceback."""

import json

import matplotlib.pyplot as plt
import pytest

from lab.__main__ import main

STARTED = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def phase(name, start, faults, truth, prometheus, graphite, latency, detected):
    """A phase of 2 s at 20 requests/s, as `lab experiment` writes it."""
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
        "latency_ms": latency,
        "detected_after_seconds": detected,
    }


def counts(total, errors):
    return {"total": total, "errors": errors, "error_ratio": errors / total if total else None}


def latency(truth, prometheus, graphite):
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
    }


RESULT = {
    "scenario": {
        "seconds": {"baseline": 2, "error burst": 2, "latency burst": 2, "recovery": 2},
        "rate": 20,
        "error_rate": 0.3,
        "latency_ms": 100,
    },
    "urls": {"app": "http://app:8000", "prometheus": "http://prom:9090", "graphite": "http://graphite:8080"},
    "scrape_seconds": 1.0,
    "flush_seconds": 1.0,
    "started": STARTED,
    "finished": STARTED + 14,
    "phases": [
        phase(
            "baseline",
            1,
            None,
            counts(40, 0),
            counts(40, 0),
            counts(40, 0),
            # Prometheus had no p99 (null): "n/a", not 0
            latency((4.2, 6.8), (4.8, None), ((3.9, 5.1), (5.6, 6.9))),
            {},
        ),
        phase(
            "error burst",
            4,
            {"routes": {"/": {"error_rate": 0.3}}},
            counts(40, 10),
            counts(40, 10),
            counts(40, 10),
            latency((4.4, 7.0), (4.9, 9.6), ((4.0, 5.2), (5.6, 7.1))),
            {"prometheus": 1.2, "graphite": 1.7},
        ),
        phase(
            "latency burst",
            7,
            {"routes": {"/": {"latency_ms": 100}}},
            counts(40, 0),
            counts(40, 0),
            counts(40, 0),
            latency((106.3, 110.9), (240.0, 248.0), ((105.2, 106.8), (107.9, 109.4))),
            {"prometheus": 2.6, "graphite": None},
        ),
        phase(
            "recovery",
            10,
            None,
            counts(40, 0),
            counts(40, 0),
            counts(39, 0),  # a datagram lost: shown against the truth
            latency((4.3, 6.4), (4.8, 9.6), ((3.8, 5.0), (5.4, 6.6))),
            {},
        ),
    ],
    "charts": {
        name: {
            "truth": [[1.5, value], [2.5, value], [4.5, value]],
            "prometheus": [[2.0, value], [3.0, None], [4.0, value]],  # null: a gap in the line
            "graphite": [[2.0, value], [3.0, value], [4.0, value]],
        }
        for name, value in (("traffic", 20.0), ("errors", 25.0), ("latency", 4.9))
    },
}


@pytest.fixture
def result_json(tmp_path):
    path = tmp_path / "experiment" / "result.json"
    path.parent.mkdir()
    path.write_text(json.dumps(RESULT, indent=2))
    return path


# Each table of report.md, by its heading: the rows RESULT must give.
TABLES = {
    "## Totals (requests to `/` answered)": [
        "| baseline | 2.0 | 40 | 40 | 40 |",
        "| error burst | 2.0 | 40 | 40 | 40 |",
        "| latency burst | 2.0 | 40 | 40 | 40 |",
        "| recovery | 2.0 | 40 | 40 | **39** (-1) |",
    ],
    "## Error ratio (5xx / all)": [
        "| baseline | 0.0 % | 0.0 % | 0.0 % | 0.0 % |",
        "| error burst | 30.0 % | 25.0 % | 25.0 % | 25.0 % |",
        "| latency burst | 0.0 % | 0.0 % | 0.0 % | 0.0 % |",
        "| recovery | 0.0 % | 0.0 % | 0.0 % | 0.0 % |",
    ],
    "## Latency (ms)": [
        "| baseline | 4 | 5 | 4 / 5 | 7 | n/a | 6 / 7 |",
        "| error burst | 4 | 5 | 4 / 5 | 7 | 10 | 6 / 7 |",
        "| latency burst | 106 | 240 | 105 / 107 | 111 | 248 | 108 / 109 |",
        "| recovery | 4 | 5 | 4 / 5 | 6 | 10 | 5 / 7 |",
    ],
    "## Detection delay (seconds after the burst started)": [
        "| error burst | 1.2 | 1.7 | the error ratio reaches 15.0 % |",
        "| latency burst | 2.6 | not shown | p95 reaches 50 ms |",
    ],
}


def test_the_report_is_redrawn_from_the_json_alone(result_json, tmp_path, capsys):
    out = tmp_path / "redrawn"
    assert main(["report", str(result_json), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"report: {out / 'report.md'}\n"
    lines = (out / "report.md").read_text().splitlines()
    assert lines[2] == (
        "2023-11-14 22:13:20 UTC. App http://app:8000, Prometheus http://prom:9090 (scrapes every 1 s), "
        "Graphite http://graphite:8080 (StatsD flushes every 1 s)."
    )
    for heading, rows in TABLES.items():
        start = lines.index(heading) + 4  # below the blank line, the header and its rule
        assert lines[start : start + len(rows)] == rows, heading
    for name in ("traffic", "errors", "latency"):
        assert f"![{name}]({name}.png)" in lines
        height, width, _ = plt.imread(out / f"{name}.png").shape
        assert (width, height) == (1000, 450), name


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
    ],
    ids=["missing", "not JSON", "not an object", "no charts", "a phase without its figures"],
)
def test_a_file_that_is_no_result_is_named(tmp_path, capsys, content, message):
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    assert main(["report", str(path)]) == 2
    assert capsys.readouterr() == ("", f"lab report: {path}: {message}\n")
    assert not (tmp_path / "report.md").exists()

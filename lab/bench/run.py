"""`lab bench` from start to end: the sections in turn, then bench/results.md; `lab bench --month`
runs section 5 alone and replaces it in bench/results.md."""

import shutil
import sys
import time

from ..settings import ROOT
from . import machine
from .month import MONTH_HEADING, month, month_text
from .overhead import (
    DOWN_VARIANTS,
    IDLE_EXPORTS,
    OVERHEAD_VARIANTS,
    PEER_VARIANTS,
    ROUNDS,
    export_cost,
    overhead,
)
from .results import results_text
from .scrape import (
    DATAGRAM_SUBJECTS,
    datagrams_per_request,
    scrape_cost_after_recycles,
    scrape_cost_by_workers,
)

RESULTS = ROOT / "bench" / "results.md"


def main(month_only: bool = False) -> int:
    """`lab bench`: every section, in turn; the results written to bench/results.md."""
    if month_only:
        print("5/5 the SLO rules after a month of history (Prometheus on 1, 7 and 30 days)")
        section = "\n".join(month_text(month()))
        old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
        kept = old.split(MONTH_HEADING)[0].rstrip("\n") + "\n\n"
        RESULTS.write_text(kept + section)
        print(section)
        print(f"section 5 replaced in {RESULTS.relative_to(ROOT)}")
        return 0
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: `make deps` installs it (Debian package wrk)")
    started = time.monotonic()
    variants = OVERHEAD_VARIANTS + PEER_VARIANTS + DOWN_VARIANTS
    print(f"1/5 instrumentation overhead, the peers' too: {len(variants) + 1} servers, {ROUNDS} rounds")
    over = overhead(variants)
    print(f"    the OTLP export alone: idle workers, {IDLE_EXPORTS * machine.EXPORT_INTERVAL_MS / 1000:g} s")
    exports = export_cost()
    print("2/5 scrape cost, by workers and after recycles (the lab's and prometheus_flask_exporter's)")
    by_workers = scrape_cost_by_workers()
    recycles = scrape_cost_after_recycles()
    print("3/5 StatsD datagrams per request (the lab's and the tutorial hooks')")
    datagrams = {name: datagrams_per_request(**subject) for name, subject in DATAGRAM_SUBJECTS.items()}
    print("    (4/5, against the peers, is read from 1/5)")
    print("5/5 the SLO rules after a month of history (Prometheus on 1, 7 and 30 days)")
    after_a_month = month()
    text = results_text(over, by_workers, recycles, datagrams, exports, time.monotonic() - started)
    text += "\n".join(month_text(after_a_month))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0

"""`lab bench` from start to end: the three sections in turn, then bench/results.md."""

import shutil
import sys
import time

from ..settings import ROOT
from . import machine
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


def main() -> int:
    """`lab bench`: every section, in turn; the results written to bench/results.md."""
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: `make deps` installs it (Debian package wrk)")
    started = time.monotonic()
    variants = OVERHEAD_VARIANTS + PEER_VARIANTS + DOWN_VARIANTS
    print(f"1/3 instrumentation overhead, the peers' too: {len(variants) + 1} servers, {ROUNDS} rounds")
    over = overhead(variants)
    print(f"    the OTLP export alone: idle workers, {IDLE_EXPORTS * machine.EXPORT_INTERVAL_MS / 1000:g} s")
    exports = export_cost()
    print("2/3 scrape cost, by workers and after recycles (the lab's and prometheus_flask_exporter's)")
    by_workers = scrape_cost_by_workers()
    recycles = scrape_cost_after_recycles()
    print("3/3 StatsD datagrams per request (the lab's and the tutorial hooks')")
    datagrams = {name: datagrams_per_request(**subject) for name, subject in DATAGRAM_SUBJECTS.items()}
    text = results_text(over, by_workers, recycles, datagrams, exports, time.monotonic() - started)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0

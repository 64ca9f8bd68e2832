"""`lab bench` from start to end: the sections in turn, then bench/results.md; `lab bench --month`
runs section 5 alone, `lab bench --ha` section 6, `lab bench --processes` section 7, and each replaces
its section in bench/results.md."""

import shutil
import sys
import time

from ..settings import ROOT
from . import machine
from .beyond import HEADING as BEYOND_HEADING
from .beyond import beyond, beyond_text
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
from .processes import HEADING as PROCESSES_HEADING
from .processes import processes_cost, processes_text
from .results import results_text
from .scrape import (
    DATAGRAM_SUBJECTS,
    datagrams_per_request,
    scrape_cost_after_recycles,
    scrape_cost_by_workers,
)

RESULTS = ROOT / "bench" / "results.md"


def replace_section(heading: str, section: str) -> None:
    """Write `section` (starting with `heading`) into bench/results.md in its place, keeping the others."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    head, *sections = old.split("\n## ")
    parts = {("## " + part).split("\n", 1)[0]: "## " + part for part in sections}
    parts[heading] = section
    kept = [parts[name].rstrip("\n") + "\n" for name in sorted(parts, key=lambda name: name.split(".")[0])]
    RESULTS.write_text(head.rstrip("\n") + "\n\n" + "\n".join(kept))


def main(month_only: bool = False, ha_only: bool = False, processes_only: bool = False) -> int:
    """`lab bench`: every section, in turn; the results written to bench/results.md."""
    if month_only or ha_only or processes_only:
        if ha_only:
            print("6/7 beyond one machine: two OTLP receivers, a second scraper, the long-term store's disk")
            heading, section = BEYOND_HEADING, "\n".join(beyond_text(beyond()))
        elif processes_only:
            print("7/7 the processes' own figures: what each pipeline pays to read them")
            heading, section = PROCESSES_HEADING, "\n".join(processes_text(processes_cost()))
        else:
            print("5/7 the SLO rules after a month of history (Prometheus on 1, 7 and 30 days)")
            heading, section = MONTH_HEADING, "\n".join(month_text(month()))
        replace_section(heading, section)
        print(section)
        print(f"{heading.removeprefix('## ')} replaced in {RESULTS.relative_to(ROOT)}")
        return 0
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: `make deps` installs it (Debian package wrk)")
    started = time.monotonic()
    variants = OVERHEAD_VARIANTS + PEER_VARIANTS + DOWN_VARIANTS
    print(f"1/7 instrumentation overhead, the peers' too: {len(variants) + 1} servers, {ROUNDS} rounds")
    over = overhead(variants)
    print(f"    the OTLP export alone: idle workers, {IDLE_EXPORTS * machine.EXPORT_INTERVAL_MS / 1000:g} s")
    exports = export_cost()
    print("2/7 scrape cost, by workers and after recycles (the lab's and prometheus_flask_exporter's)")
    by_workers = scrape_cost_by_workers()
    recycles = scrape_cost_after_recycles()
    print("3/7 StatsD datagrams per request (the lab's and the tutorial hooks')")
    datagrams = {name: datagrams_per_request(**subject) for name, subject in DATAGRAM_SUBJECTS.items()}
    print("    (4/7, against the peers, is read from 1/7)")
    print("5/7 the SLO rules after a month of history (Prometheus on 1, 7 and 30 days)")
    after_a_month = month()
    print("6/7 beyond one machine: two OTLP receivers, a second scraper, the long-term store's disk")
    ha = beyond()
    print("7/7 the processes' own figures: what each pipeline pays to read them")
    own = processes_cost()
    text = results_text(over, by_workers, recycles, datagrams, exports, time.monotonic() - started)
    text += "\n".join(month_text(after_a_month)) + "\n\n" + "\n".join(beyond_text(ha))
    text += "\n\n" + "\n".join(processes_text(own))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0

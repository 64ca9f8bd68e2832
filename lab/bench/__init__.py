"""`make bench`: what instrumentation and scraping cost, measured on this machine.

Timings on a small shared machine are noisy, so every figure comes from one run
with the variants interleaved (A B C, B C A, ...), as a ratio or a median shown
with its spread, never a single absolute time. Results go to bench/results.md,
which says what was measured and why that way.

1. Instrumentation overhead of `/` under wrk: LAB_METRICS=off vs prometheus,
   statsd, otel, all. StatsD datagrams go to a bound socket nobody reads, OTLP
   exports to a receiver in the bench's process (OtlpSink), so the app is
   charged only its own cost, its export thread's included; then `all` with
   the real StatsD daemon beside the app, and `all` with StatsD down (host
   unresolvable, nothing listening on its port) vs up. And the OTLP export
   alone, in idle workers.
2. Scrape cost: `/metrics` time for 1, 2, 4, 8 workers, and after 0, 100 and
   500 recycled workers next to a server that never recycled.
3. StatsD datagrams per request.
4. Peers (lab/peers): what a user would pick instead, on the same app with
   LAB_METRICS=off, loaded in the same rounds: prometheus_flask_exporter's
   GunicornPrometheusMetrics next to the lab's pull, a tutorial's pystatsd
   request hooks next to its push, OpenTelemetry's Flask instrumentation next
   to its OTLP push. Worker CPU per request above `off`, and
   the peer's scrape after recycles (section 2) and datagrams (section 3).

5. The SLO rules after a month: 1, 7 and 30 days of the app's series backfilled
   (history.py, promtool 3), Debian's Prometheus on each with today's rules and,
   beside them, the SLO groups as they were; each group's evaluation time and
   samples read, and the TSDB's bytes per sample (month.py). `lab bench --month`
   runs this section alone.
6. Beyond one machine (beyond.py): the OTLP push to two receivers against one (under wrk as
   section 1, and idle), a second scraper's cost, and the long-term store's disk per day, with the
   two replicas' copies deduplicated and kept. `lab bench --ha` runs this section alone.

Section 1 loads each variant head to head with `off` (both servers on one CPU
at the same time) for the throughput figure, and alone for the p99: see
`overhead`.

machine.py holds the machine and the load (CPU pinning, wrk, the servers), overhead.py
section 1, scrape.py sections 2 and 3, results.py the results file of sections 1 to 4, history.py
and month.py section 5, beyond.py section 6; run.py runs them in turn (`main`).
"""

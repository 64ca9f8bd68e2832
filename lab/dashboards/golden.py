"""The four golden signals over time, one panel function per signal and pipeline, and the
symptom-and-cause pair of /database/; on the three-way dashboard each says how the pipelines differ."""

from grafana_foundation_sdk.builders import timeseries

from ..queries import is_
from .pipelines import EXPORT, FLUSH, SCRAPE, SCRAPED, STATSD, PromPipeline, graphite, label, statsd_panel


def latency(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Latency p50 / p95 / p99 ({p.name})",
        "How long requests take, per route. Percentiles computed at query time by histogram_quantile over "
        f"the rate of the {p.names.duration.name} buckets, so they add up over workers, replicas and any "
        "time window. Read p99 for the slowest users, p50 for the typical one.",
        "s",
        *(
            p.query(
                p.queries.latency(q, p.routes, by=p.names.route), f"p{round(q * 100)} {label(p.names.route)}"
            )
            for q in (0.5, 0.95, 0.99)
        ),
    )


def traffic(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Traffic ({p.name})",
        "Requests per second answered, per route (every status, 404 and 500 included): the demand on the "
        f"service, from {p.counted}.",
        "reqps",
        p.query(p.queries.traffic(p.routes, by=p.names.route), label(p.names.route)),
    )


def errors(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Errors: 5xx and 4xx ratio ({p.name})",
        "Share of requests answered with a 5xx (the service failed: counts against the availability SLO) "
        "and with a 4xx (the client asked for something wrong: a spike can still mean a broken link or "
        "client). 0 % is healthy.",
        "percentunit",
        p.query(p.queries.error_ratio(p.routes, status="5.."), "5xx"),
        p.query(p.queries.error_ratio(p.routes, status="4.."), "4xx"),
    )


def saturation(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Saturation: busy workers ({p.name})",
        f"Requests in flight over capacity (gunicorn workers x threads), {p.gauged}. Near 100 % new requests "
        "wait in the queue and latency climbs.",
        "percentunit",
        p.query(p.queries.saturation(), "in flight / capacity"),
    )


def worker_latency() -> timeseries.Panel:
    return SCRAPED.panel(
        "Worker: mean processing time",
        "The post's non-web worker: mean time of its request_processing_seconds Summary, rate(_sum) / "
        "rate(_count). A Summary has no buckets: this mean (or its client-side quantiles) is all it gives. "
        "The worker is not an app replica: the instance variable does not apply.",
        "s",
        SCRAPED.query(SCRAPED.queries.blog_worker_mean(), "mean"),
    )


def database_symptom(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Symptom: /database/ latency p95 ({p.name})",
        "What users of /database/ feel: the 95th percentile of the route's request duration. Compare with "
        "the cause next to it: when both move together, the database is the reason.",
        "s",
        p.query(p.queries.latency(0.95, is_(p.names.route, "/database/")), "/database/ p95"),
    )


def database_cause(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Cause: database query p95 ({p.name})",
        "Time spent in the (simulated) database, 95th percentile per operation, from "
        f"{p.names.db_duration.name}. The gap to the /database/ latency is the time spent outside the query.",
        "s",
        p.query(p.queries.db_latency(0.95), f"{label(p.names.db_operation)} p95"),
    )


def statsd_latency() -> timeseries.Panel:
    return statsd_panel(
        "Latency mean / upper_90 / max (StatsD)",
        "How long requests take, per endpoint and method, in ms. StatsD computes mean, 90th percentile "
        "(upper_90) and max (upper) from the raw timings of each flush, per series.",
        "ms",
        graphite(STATSD.latency("$endpoint")),
    )


def statsd_traffic() -> timeseries.Panel:
    return statsd_panel(
        "Traffic (StatsD)",
        "Requests per second, per endpoint: StatsD's per-second counters (stats.*) of every method and "
        "status, summed by endpoint with groupByNode.",
        "reqps",
        graphite(STATSD.traffic("$endpoint")),
    )


def statsd_errors() -> timeseries.Panel:
    return statsd_panel(
        "Errors: 5xx and 4xx percent (StatsD)",
        "Percent of requests answered with a 5xx (service failures) and a 4xx (client errors): asPercent "
        "of the status counters over all counters. 0 % is healthy.",
        "percent",
        graphite(STATSD.error_percent("$endpoint", "5*", "5xx")),
        graphite(STATSD.error_percent("$endpoint", "4*", "4xx")),
    )


def statsd_saturation() -> timeseries.Panel:
    return statsd_panel(
        "Saturation: requests in flight (StatsD)",
        "Requests being answered now: a StatsD gauge every worker changes by deltas, so the workers add up. "
        "A count, not a ratio: StatsD knows nothing of capacity, so compare it with workers x threads.",
        "short",
        graphite(STATSD.in_flight()),
    )


def statsd_database_symptom() -> timeseries.Panel:
    return statsd_panel(
        "Symptom: /database/ latency upper_90 (StatsD)",
        "What users of /database/ feel: the 90th percentile of the endpoint's timings in each flush, in ms.",
        "ms",
        graphite(STATSD.latency("database", "upper_90")),
    )


def statsd_database_cause() -> timeseries.Panel:
    return statsd_panel(
        "Cause: database query upper_90 (StatsD)",
        "Time spent in the (simulated) database select, 90th percentile of each flush, in ms. When it moves "
        "with the /database/ latency next to it, the database is the reason.",
        "ms",
        graphite(f"alias({STATSD.db_timer('select', 'upper_90')}, 'select upper_90')"),
    )


# What differs between the three views of one signal: said once, under each of them.
COMPARED = "Scrape vs OTLP vs StatsD:"
DIFFERENCES = {
    "latency": f"{COMPARED} the scrape and the OTLP push carry histograms with the same bucket edges (0.3, "
    "1, 2, 3 s among them): histogram_quantile re-aggregates them over workers, replicas and any window, "
    f"and the two agree but for when the buckets were read (a scrape every {SCRAPE:g} s, each worker's push "
    f"every {EXPORT:g} s). StatsD's upper_90 is exact, but per {FLUSH:g} s flush: it cannot be averaged or "
    "summed into a correct percentile over time or hosts.",
    "traffic": f"{COMPARED} the scrape samples a counter every {SCRAPE:g} s: a missed scrape loses "
    f"resolution, not requests. Each worker pushes its cumulative count every {EXPORT:g} s: a failed push "
    "loses resolution too (the next one carries the total), but every recycled worker starts new series, "
    "and rate() sees no increase before a series' first push, so a recycle can hide some of the new "
    f"worker's first requests. StatsD counts every request as a UDP datagram, in {FLUSH:g} s flushes: a "
    "lost datagram is a lost request, and the line moves in flush steps, up to one flush late.",
    "errors": f"{COMPARED} the same requests, counted three times. The two Prometheus ratios are over the "
    "rate interval (a few scrapes, or a few pushes of each worker), Graphite's per flush: the StatsD line "
    f"is spikier. Each shows an error up to one interval late: a scrape ({SCRAPE:g} s), an export "
    f"({EXPORT:g} s), a flush ({FLUSH:g} s).",
    "saturation": f"{COMPARED} the scrape reads in flight and capacity of the live workers at each scrape. "
    f"Each worker pushes both every {EXPORT:g} s, and its series get no staleness marker when it exits: "
    "the OTLP view sums each worker's last push within the rate interval, so an exited worker's capacity "
    f"still counts for up to that interval. The StatsD gauge is sampled by each worker every second and "
    f"flushed every {FLUSH:g} s, and has no capacity. A burst shorter than the sampling interval is "
    "invisible to all three.",
    "causes": f"{COMPARED} the same comparison from three sides: p95 from buckets (seconds) for the scrape "
    "and the OTLP push, per-flush upper_90 (ms) for StatsD; each tells whether the database explains the "
    "route's latency.",
}


def explained(panel: timeseries.Panel, signal: str) -> timeseries.Panel:
    """Append to the panel's description what differs between the three views of its signal."""
    return panel.description(f"{panel.build().description} {DIFFERENCES[signal]}")

"""The Now row: each signal's value now, per pipeline, colored at the thresholds its alert fires at
(read from the rule files by lab/rules.py)."""

from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import dashboard as dashboard_models

from .. import rules
from ..settings import route as app_route
from .panels import Steps, percent, thresholds
from .pipelines import OTLP, SCRAPED, STATSD, PromPipeline, graphite, label, statsd_stat
from .slo import AVAILABILITY

# Where the symptom alerts fire (prometheus/rules/alerts.yml).
ERRORS_ALERTED = rules.threshold("HighErrorRatio")
SATURATED = rules.threshold("Saturation")
SLOW, SLOW_ROUTES = rules.route_thresholds("HighLatency")


def error_steps(scale: float = 1) -> Steps:
    """The error ratio's colors (`scale` 100 for a percent), at the rates the alerts fire at."""
    budget = AVAILABILITY.budget * scale
    return [
        (AVAILABILITY.ticket_burn * budget, "yellow"),
        (ERRORS_ALERTED * scale, "orange"),
        (AVAILABILITY.page_burn * budget, "red"),
    ]


ERROR_COLORS = (
    f"Yellow from {percent(AVAILABILITY.ticket_burn * AVAILABILITY.budget)}: the availability SLO's "
    f"budget ({percent(AVAILABILITY.budget)} of requests) burns at {AVAILABILITY.ticket_burn:g}x, the "
    f"slow-burn ticket's rate; orange from {percent(ERRORS_ALERTED)}, where HighErrorRatio fires (on a route "
    f"other than /error/); red from {percent(AVAILABILITY.page_burn * AVAILABILITY.budget)}, the fast-burn "
    f"page's {AVAILABILITY.page_burn:g}x. The numbers are the alerts' (prometheus/rules/alerts.yml)."
)
LATENCY_COLORS = (
    f"Red above the latency the HighLatency alert allows a route: {SLOW * 1000:g} ms, "
    + ", ".join(f"{seconds:g} s for {route}" for route, seconds in SLOW_ROUTES.items())
    + " (the alert reads the p95 over 5 minutes: a red p99 is where it is heading)."
)


def slow_routes(panel: stat.Panel, name_of=lambda route: route, scale: float = 1) -> stat.Panel:
    """The latency stat with the routes HighLatency treats apart red at their own threshold."""
    for route, seconds in SLOW_ROUTES.items():
        red = thresholds("green", [(seconds * scale, "red")]).build()
        panel.override_by_name(name_of(route), [dashboard_models.DynamicConfigValue("thresholds", red)])
    return panel


def traffic_now(p: PromPipeline) -> stat.Panel:
    return p.stat(
        f"Traffic now ({p.name})",
        f"Requests per second answered now, over the routes chosen, from {p.counted}. No color: traffic "
        "gives the other signals their size, it is neither good nor bad.",
        "reqps",
        [],
        p.query(p.queries.traffic(p.routes), "requests/s"),
    )


def errors_now(p: PromPipeline) -> stat.Panel:
    return p.stat(
        f"Errors now: 5xx ratio ({p.name})",
        "Share of requests answered with a 5xx now, over the routes chosen (the load generator's /error/ "
        f"among them: its 500s count against the availability SLO). {ERROR_COLORS}",
        "percentunit",
        error_steps(),
        p.query(p.queries.error_ratio(p.routes), "5xx"),
    )


def latency_now(p: PromPipeline) -> stat.Panel:
    route = p.names.route
    return slow_routes(
        p.stat(
            f"Latency now: p99 ({p.name})",
            f"Each route's 99th percentile now, from the {p.names.duration.name} buckets. {LATENCY_COLORS}",
            "s",
            [(SLOW, "red")],
            p.query(p.queries.latency(0.99, p.routes, by=route), label(route)),
        )
    )


def saturation_now(p: PromPipeline) -> stat.Panel:
    return p.stat(
        f"Saturation now ({p.name})",
        f"Requests in flight over capacity (workers x threads), {p.gauged}. Red from {percent(SATURATED)}, "
        "where the Saturation alert fires: new requests queue.",
        "percentunit",
        [(SATURATED, "red")],
        p.query(p.queries.saturation(), "busy"),
    )


def stats(p: PromPipeline) -> list[stat.Panel]:
    """The pipeline's four signals now."""
    return [traffic_now(p), errors_now(p), latency_now(p), saturation_now(p)]


def statsd_endpoint(route: str) -> str:
    """The StatsD endpoint of one of the app's routes (app.labels names it)."""
    return app_route(route).endpoint


def statsd_traffic_now() -> stat.Panel:
    return statsd_stat(
        "Traffic now (StatsD)",
        "Requests per second answered in the last flush, over the endpoints chosen. No color: traffic gives "
        "the other signals their size.",
        "reqps",
        [],
        graphite(f"alias(sumSeries({STATSD.requests('$endpoint')}), 'requests/s')"),
    )


def statsd_errors_now() -> stat.Panel:
    return statsd_stat(
        "Errors now: 5xx percent (StatsD)",
        "Percent of the last flush's requests answered with a 5xx, over the endpoints chosen. "
        f"{ERROR_COLORS}",
        "percent",
        error_steps(scale=100),
        graphite(STATSD.error_percent("$endpoint")),
    )


def statsd_latency_now() -> stat.Panel:
    latency = statsd_stat(
        "Latency now: upper_99 (StatsD)",
        "Each endpoint's 99th percentile of the last flush, in ms: the slowest of its methods' upper_99. "
        f"{LATENCY_COLORS}",
        "ms",
        [(SLOW * 1000, "red")],
        graphite(f"groupByNode({STATSD.timer('$endpoint', stat='upper_99')}, -3, 'maxSeries')"),
    )
    return slow_routes(latency, statsd_endpoint, scale=1000)


def statsd_saturation_now() -> stat.Panel:
    return statsd_stat(
        "Saturation now: in flight (StatsD)",
        "Requests being answered now. No color: StatsD knows no capacity, so a count cannot say how full the "
        "service is; the scrape and the OTLP push carry the ratio, and its red.",
        "short",
        [],
        graphite(STATSD.in_flight()),
    )


def statsd_stats() -> list[stat.Panel]:
    """StatsD's four signals now."""
    return [statsd_traffic_now(), statsd_errors_now(), statsd_latency_now(), statsd_saturation_now()]


def three_way_stats() -> list[stat.Panel]:
    """Each pipeline's four stats as a 2 x 2 block under its column: scrape, OTLP, StatsD."""
    blocks = (stats(SCRAPED), stats(OTLP), statsd_stats())
    return [panel for half in (slice(0, 2), slice(2, 4)) for block in blocks for panel in block[half]]

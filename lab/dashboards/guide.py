"""The guide panel of the three-way dashboard: the four golden signals, what each means and how to read
it, and its series in each pipeline."""

from grafana_foundation_sdk.builders import text
from grafana_foundation_sdk.models import text as text_models

from app.signals import (
    DB_QUERY_DURATION,
    HTTP_CAPACITY,
    HTTP_IN_FLIGHT,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    STATSD_PREFIX,
)

from .pipelines import OTLP, SCRAPED, STATSD

GUIDE = f"""\
The **Four Golden Signals** (Google SRE book, ch. 6 *Monitoring Distributed Systems*) and their series, \
three ways: scraped by Prometheus (datasource `prometheus`), pushed over OTLP (datasource `otel`: in \
compose the same Prometheus, which receives OTLP itself) and pushed through StatsD to Graphite. StatsD names \
start with the `prefix` variable (the app's STATSD_PREFIX, `{STATSD_PREFIX}` by default).

| signal | what it means | how to read it | scrape (pull) | OTLP (push) | StatsD (push) |
| --- | --- | --- | --- | --- | --- |
| **Latency** | time to answer a request | p99 for the slowest users, p50 for the typical one | \
`{HTTP_REQUEST_DURATION.name}` histogram: `histogram_quantile` over its `_bucket` rates, in s | \
`{OTLP.names.duration.name}` histogram, the same buckets, in s | \
`{STATSD.timer("<endpoint>", "<method>", "{mean,upper_90,upper}")}`, in ms per flush |
| **Traffic** | demand: requests per second | the baseline that gives the other three their size | \
`rate({HTTP_REQUESTS.name}[…])` | `rate({OTLP.names.requests}[…])`, the histogram's count | \
`{STATSD.requests("<endpoint>", "<method>", "<status>")}` (per second) |
| **Errors** | share of requests that fail | 5xx: the service failed (the availability SLO); 4xx: the \
client asked wrong; healthy is 0 % | `{HTTP_REQUESTS.name}{{{SCRAPED.names.status}=~"5.."}}` over all | \
`{OTLP.names.requests}{{{OTLP.names.status}=~"5.."}}` over all | \
`{STATSD.requests(status="5*")}` over `{STATSD.requests()}` (`asPercent`) |
| **Saturation** | how full the service is | near 100 % requests queue and latency climbs | \
`{HTTP_IN_FLIGHT.name}` / `{HTTP_CAPACITY.name}` | `{OTLP.names.in_flight}` / `{OTLP.names.capacity}`, \
each worker's last push | `{STATSD.in_flight_series()}` (a count: StatsD knows no capacity) |

**Symptoms and causes.** Alert on symptoms, what users feel (the four signals); debug with causes, what \
explains them. The last row sets the `/database/` latency (symptom) next to the time spent in the database \
(cause: `{DB_QUERY_DURATION.name}`, `{OTLP.names.db_duration.name}`, `{STATSD.db_timer("select", "*")}`). \
The `route` variable filters both Prometheus views (their route values agree). The `instance` variable picks \
app replicas of the scrape; the OTLP push's instances are workers (random ids, new with every recycle) and \
StatsD merges the replicas, so neither has an instance filter.
"""


def guide() -> text.Panel:
    return (
        text.Panel()
        .title("How to read this dashboard")
        .description(
            "The Four Golden Signals, what each means, and the series of the three pipelines that carry it."
        )
        .mode(text_models.TextMode.MARKDOWN)
        .content(GUIDE)
        .span(24)
        .height(13)
    )

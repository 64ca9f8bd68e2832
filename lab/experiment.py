"""`lab experiment`: a scripted scenario against a running stack, and how each pipeline saw it.

Four phases of steady traffic to `/`: baseline, an error burst, a latency burst
(both injected through the app's /faults), and recovery. The experiment counts
every request it sends and every answer (the truth), then asks each pipeline's
backend, phase by phase, for totals, error ratio and p95/p99 latency: Prometheus
(pull), Graphite (StatsD push) and the OTLP receiver (OTLP push: Prometheus
itself in compose, VictoriaMetrics natively, both read with PromQL). It notes how
long after each burst started each backend showed it, and how saturated the app
was. At the end it reads when each alert of prometheus/rules fired during the run
(Prometheus's `ALERTS` series) and when its notification reached the lab's webhook
sink (or why Alertmanager sent none), and the series the charts draw, so
result.json (`save`) holds every figure of the report: lab/report.py writes it up
from that file alone. A value a backend did not have is NaN here and null in
result.json, never 0.

Between phases the traffic pauses until every backend holds the whole phase
(or stops changing): that is what makes per-phase totals exact, since a scrape,
a flush or an export that straddled two phases would split their requests.
"""

import json
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
from tqdm import tqdm

from . import traffic
from .backends import Alertmanager, AlertSink, BackendError, Graphite, Prometheus, wait_for
from .faults import FaultControl
from .queries import (
    ERRORS,
    ERRORS_GLOB,
    STATSD_OWN_SERIES,
    OtelQueries,
    PullQueries,
    PushQueries,
    is_,
    matches,
)
from .rules import rules

PHASES = ("baseline", "error burst", "latency burst", "recovery")
# Pull, StatsD push, OTLP push: each pipeline's key in result.json (the truth's is "truth").
BACKENDS = ("prometheus", "graphite", "otel")
POLL_SECONDS = 0.25
# How much later than its data the OTLP receiver may show a series new to a query it answered before
# (the first 5xx of `/`, born in the error burst): VictoriaMetrics, the native twin, caches which
# series match a query's filters and resets that cache once per 10 s plus jitter (lib/mergeset).
RECEIVER_CACHE_SECONDS = 11
# How many slowest periods the totals get to stop moving before the experiment starts.
QUIET_TRIES = 3
# The step at which a run reads ALERTS: when an alert fired is known to a second, as a detection
# delay is to a poll. Prometheus answers at most 11,000 points a series: a longer run, a longer step.
ALERT_STEP_SECONDS, MAX_POINTS = 1.0, 11_000


class ExperimentError(RuntimeError):
    """The stack is not in a state the experiment can measure; the message says why."""


@dataclass(frozen=True)
class Scenario:
    seconds: dict[str, float]  # phase -> duration
    rate: float = 20.0  # requests per second to /
    error_rate: float = 0.3  # injected during the error burst
    latency_ms: float = 200.0  # injected during the latency burst

    def faults(self, phase: str) -> dict | None:
        if phase == "error burst":
            return {"routes": {"/": {"error_rate": self.error_rate}}}
        if phase == "latency burst":
            return {"routes": {"/": {"latency_ms": self.latency_ms}}}
        return None


# The route the experiment loads, and its Flask endpoint (its StatsD name).
ROUTE_UNDER_TEST, ENDPOINT_UNDER_TEST = "/", "index"


@dataclass(frozen=True)
class RouteQueries:
    """A PromQL pipeline's queries about the route under test, in that pipeline's names."""

    over: PullQueries  # the scrape's, or OtelQueries for the OTLP push

    @property
    def route(self) -> str:
        return is_(self.over.names.route, ROUTE_UNDER_TEST)

    @property
    def total(self) -> str:
        return self.over.total(self.route)

    @property
    def errors(self) -> str:
        return self.over.total(self.route, matches(self.over.names.status, ERRORS))

    def rate(self) -> str:
        return self.over.traffic(self.route)

    def error_ratio(self) -> str:
        return self.over.error_ratio(self.route)

    def quantile(self, q: float) -> str:
        return self.over.latency(q, self.route)

    def quantile_between(self, q: float, seconds: float) -> str:
        """The q-quantile of exactly the requests between `seconds` ago and the query time."""
        return self.over.latency_between(q, seconds, self.route)

    def saturation(self) -> str:
        """In flight over capacity, of the whole app: queueing shows here, in no timer."""
        return self.over.saturation()

    def all(self) -> list[str]:
        return [
            self.total,
            self.errors,
            self.rate(),
            self.error_ratio(),
            self.quantile(0.95),
            self.quantile_between(0.95, 60),
            self.saturation(),
        ]


@dataclass(frozen=True)
class Queries:
    """What each backend is asked about the route under test: the contract's queries (lab/queries.py)."""

    prefix: str  # STATSD_PREFIX
    window: str  # the scrape's rates: a few scrapes, like Grafana's $__rate_interval
    otel_window: str = "20s"  # the OTLP push's rates: a few export intervals
    service: str = "app"  # OTEL_SERVICE_NAME: the pushed series' job, as "app" is the scrape's

    @property
    def pull(self) -> RouteQueries:
        return RouteQueries(PullQueries(scope=(is_("job", "app"),), window=self.window))

    @property
    def otel(self) -> RouteQueries:
        return RouteQueries(OtelQueries(scope=(is_("job", self.service),), window=self.otel_window))

    @property
    def push(self) -> PushQueries:
        return PushQueries(prefix=self.prefix)

    @property
    def graphite_total(self) -> str:
        return self.push.requests(ENDPOINT_UNDER_TEST, per_second=False)

    @property
    def graphite_errors(self) -> str:
        return self.push.requests(ENDPOINT_UNDER_TEST, status=ERRORS_GLOB, per_second=False)

    def graphite_rate(self) -> str:
        return f"sumSeries({self.push.requests(ENDPOINT_UNDER_TEST)})"

    def graphite_upper(self, percent: int) -> str:
        return self.push.timer(ENDPOINT_UNDER_TEST, "GET", f"upper_{percent}")

    def all(self) -> list[str]:
        """Every query the experiment sends (the contract test reads them)."""
        return [
            *self.pull.all(),
            *self.otel.all(),
            self.graphite_total,
            self.graphite_errors,
            self.graphite_rate(),
            *(self.graphite_upper(percent) for percent in (95, 99)),
            STATSD_OWN_SERIES,
        ]


@dataclass
class Counts:
    total: float
    errors: float

    @property
    def error_ratio(self) -> float:
        return self.errors / self.total if self.total else math.nan

    def plus(self, other: "Counts") -> "Counts":
        return Counts(self.total + other.total, self.errors + other.errors)

    def minus(self, other: "Counts") -> "Counts":
        return Counts(self.total - other.total, self.errors - other.errors)


@dataclass(frozen=True)
class Mark:
    """Where each backend's totals stood while nothing was in flight: a phase counts from here."""

    at: float
    counted: dict[str, Counts]  # backend -> its totals


@dataclass
class Phase:
    name: str
    faults: dict | None
    start: float
    end: float
    settled: float  # when every backend held the phase (or stopped changing)
    answers: list[traffic.Answer]
    truth: Counts
    counted: dict[str, Counts]  # backend -> what it counted in the phase
    latency: dict[str, dict[str, float]]  # source -> {"p95": ms, ...}
    detected: dict[str, float | None]  # backend -> seconds after the start it showed the burst
    saturation_peak: dict[str, float]  # PromQL backend -> the highest in flight / capacity it showed


@dataclass
class Firing:
    """One stretch of the run an alert fired (epoch seconds), and what the webhook sink received of it."""

    alertname: str
    severity: str
    already_firing: bool  # since before the run started: no `fired_at`, and its page came before the run
    fired_at: float | None
    resolved_at: float | None  # None: still firing when the run ended
    notified_at: float | None = None  # when its first firing notification reached the sink
    resolved_notified_at: float | None = None  # when its resolved one did, if during the run
    not_notified: str | None = None  # why it fired in the run and reached no one, as Alertmanager says


@dataclass
class Result:
    scenario: Scenario
    urls: dict[str, str]
    scrape_seconds: float
    flush_seconds: float
    export_seconds: float
    started: float
    finished: float
    phases: list[Phase]
    # chart -> source -> (seconds since the start, value); a NaN breaks the line where no value exists
    charts: dict[str, dict[str, list[tuple[float, float]]]]
    alerts: list[Firing]
    # "alert_sink" / "alertmanager" -> why the alert times lack what it would have said
    alerts_missing: dict[str, str]


@dataclass(frozen=True)
class PromQLSource:
    """A pipeline's backend read with PromQL, its queries about `/`, and how often it gets a new value."""

    backend: Prometheus
    queries: RouteQueries
    step: float  # seconds: the scrape interval, or the export interval

    def counts(self) -> Counts:
        return Counts(self.backend.value(self.queries.total), self.backend.value(self.queries.errors))

    def percentiles_between(self, since: float, until: float) -> dict[str, float]:
        """p95 and p99 in ms of exactly the requests between `since` and `until`."""
        return {
            f"p{q}": 1000
            * self.backend.value(
                self.queries.quantile_between(q / 100, until - since), at=until, empty=math.nan
            )
            for q in (95, 99)
        }

    def reaches(self, query: str, threshold: float) -> Callable[[], bool]:
        """A check: whether the value of `query` has reached `threshold` yet."""
        return lambda: self.backend.value(query) >= threshold

    def series(self, query: str, start: float, end: float) -> list[tuple[float, float]]:
        return self.backend.series(query, start, end, self.step)

    def saturation_peak(self, start: float, end: float) -> float:
        """The highest in flight / capacity between `start` and `end`."""
        return max(
            (value for _, value in self.series(self.queries.saturation(), start, end)), default=math.nan
        )


class Experiment:
    def __init__(
        self,
        scenario: Scenario,
        app: str,
        prometheus: str,
        graphite: str,
        otel: str,
        token: str,
        settings: dict,
        *,
        alertmanager: str,
        alert_sink: str,
    ):
        """`otel`: the OTLP receiver's URL; `settings`: the app's (app/config.py) as the stack runs it;
        `alert_sink`: the lab's webhook receiver, which Alertmanager notifies."""
        self.scenario = scenario
        self.app = app.rstrip("/")
        self.prometheus = Prometheus(prometheus.rstrip("/"))
        self.graphite = Graphite(graphite.rstrip("/"))
        self.otel = Prometheus(otel.rstrip("/"))  # every receiver the lab runs answers PromQL
        self.alertmanager = Alertmanager(alertmanager.rstrip("/"))
        self.alert_sink = AlertSink(alert_sink.rstrip("/"))
        self.faults = FaultControl(self.app, token)
        self.prefix = settings["STATSD_PREFIX"]
        self.export = settings["OTEL_METRIC_EXPORT_INTERVAL"] / 1000
        self.service = settings["OTEL_SERVICE_NAME"]

    def run(self) -> Result:
        """Run every phase; return what was sent and what each backend says of it."""
        self.faults.clear()  # also checks the token, before any traffic is sent
        started = time.time()
        # Every Graphite total is a sum of points from here: older points cancel out in differences.
        self.since = started - 60
        self.scrape = self.prometheus.scrape_interval("app")
        self.queries = Queries(
            self.prefix,
            window=f"{max(4 * self.scrape, 4):g}s",
            otel_window=f"{max(4 * self.export, 4):g}s",
            service=self.service,
        )
        self.promql = {
            "prometheus": PromQLSource(self.prometheus, self.queries.pull, self.scrape),
            "otel": PromQLSource(self.otel, self.queries.otel, self.export),
        }
        # StatsD reports on itself at every flush, in the StatsD schema: its step is the flush interval.
        self.flush = self.graphite.step(STATSD_OWN_SERIES, self.since) or 10.0
        mark = self._check_quiet()
        phases = []
        with tqdm(total=sum(self.scenario.seconds.values()), unit="s", bar_format=BAR) as progress:
            for name in PHASES:
                phase, mark = self._run_phase(name, mark, progress)
                phases.append(phase)
                if name != PHASES[-1]:
                    # One more flush, so that the next phase's first points fall in a later slot.
                    time.sleep(self.flush)
        self.faults.clear()
        urls = {
            "app": self.app,
            "prometheus": self.prometheus.url,
            "graphite": self.graphite.url,
            "otel": self.otel.url,
            "alertmanager": self.alertmanager.url,
            "alert_sink": self.alert_sink.url,
        }
        finished = time.time()
        charts = self._charts(started, finished, phases)
        alerts, missing = self._alerts(started, finished)
        for reason in missing.values():  # the report says it too, where the times would be
            print(f"lab experiment: the alert times are incomplete: {reason}", file=sys.stderr)
        return Result(
            self.scenario,
            urls,
            self.scrape,
            self.flush,
            self.export,
            started,
            finished,
            phases,
            charts,
            alerts,
            missing,
        )

    def _cumulative(self) -> dict[str, Counts]:
        """Each backend's totals of `/` now (Graphite's: since `self.since`)."""
        graphite = Counts(
            self.graphite.total(self.queries.graphite_total, self.since),
            self.graphite.total(self.queries.graphite_errors, self.since),
        )
        return {"graphite": graphite} | {backend: source.counts() for backend, source in self.promql.items()}

    def _slowest_period(self) -> float:
        """The longest a request takes to reach a backend: a scrape, a flush or an export interval."""
        return max(self.scrape, self.flush, self.export)

    def _quiet_seconds(self) -> float:
        """How long no total may move before a phase counts as settled short of the truth."""
        return 2 * self._slowest_period() + 2 + RECEIVER_CACHE_SECONDS

    def _check_quiet(self) -> Mark:
        """Make sure nothing else sends to `/` (the totals would include it).

        The totals must hold still for one slowest period. Traffic that ended just
        before (a load generator stopped a moment ago) may still be on its way to a
        backend, so they get QUIET_TRIES periods to do so; traffic that goes on moves
        them in every one.
        """
        first = before = self._cumulative()
        for _ in range(QUIET_TRIES):
            time.sleep(self._slowest_period() + 1)
            after = self._cumulative()
            if after == before:
                return Mark(time.time(), after)
            before = after
        moved = ", ".join(
            f"{backend} {first[backend].total:g} -> {after[backend].total:g}" for backend in BACKENDS
        )
        raise ExperimentError(
            f"other traffic reaches / (totals: {moved}): stop the load generator "
            "(Stop in its web UI, or docker compose stop loadgen), wait a few seconds and try again"
        )

    def _run_phase(self, name: str, mark: Mark, progress) -> tuple[Phase, Mark]:
        faults = self.scenario.faults(name)
        if faults is None:
            self.faults.clear()
        else:
            self.faults.replace(faults)
        time.sleep(0.6)  # every worker re-reads the faults within 0.5 s (app/faults.py)

        progress.set_description(name)
        seconds, done_before = self.scenario.seconds[name], progress.n
        start = time.time()
        detector = Detector(self._detections(name, start), start)
        detector.start()

        def tick():
            progress.n = done_before + min(time.time() - start, seconds)
            progress.refresh()

        answers = traffic.send(self.app + "/", self.scenario.rate, seconds, tick=tick)
        end = time.time()
        progress.n = done_before + seconds
        answered = [a for a in answers if a.status]
        truth = Counts(len(answered), sum(1 for a in answered if a.status >= 500))

        progress.set_description(f"{name}: waiting for the backends")
        counted = self._settle(mark, truth)
        settled = time.time()
        detector.stop()
        phase = Phase(
            name=name,
            faults=faults,
            start=start,
            end=end,
            settled=settled,
            answers=answers,
            truth=truth,
            counted={backend: counted[backend].minus(mark.counted[backend]) for backend in BACKENDS},
            latency=self._latencies(answered, mark.at, settled),
            detected=detector.found,
            saturation_peak={
                backend: source.saturation_peak(start, end) for backend, source in self.promql.items()
            },
        )
        return phase, Mark(settled, counted)

    def _settle(self, mark: Mark, truth: Counts) -> dict[str, Counts]:
        """Wait until every backend holds the phase's requests, or they all stop changing.

        The OTLP receiver has them one export interval after the last answer (every
        worker has exported its cumulative totals by then), plus its own delay in
        showing them (RECEIVER_CACHE_SECONDS at most).
        """
        expected = {backend: mark.counted[backend].plus(truth) for backend in BACKENDS}
        last, unchanged_since = None, time.monotonic()

        def read():
            nonlocal last, unchanged_since
            current = self._cumulative()
            if current != last:
                last, unchanged_since = current, time.monotonic()
            return current

        def done(current) -> bool:
            return current == expected or time.monotonic() - unchanged_since > self._quiet_seconds()

        return wait_for(read, done, timeout=10 * self._quiet_seconds(), interval=POLL_SECONDS)

    def _latencies(self, answered: list[traffic.Answer], since: float, until: float) -> dict:
        """p95 and p99 in ms: the client's (truth), each PromQL backend's, and Graphite's per-flush values."""
        # The slots of this phase's flushes: after the last one of the phase before.
        first_slot = math.floor((since + 1) / self.flush) * self.flush
        last_slot = math.floor((until + 1) / self.flush) * self.flush
        graphite = {}
        for q in (95, 99):
            values = [
                value
                for slot, value in self.graphite.points(self.queries.graphite_upper(q), first_slot, last_slot)
                if first_slot < slot <= last_slot
            ]
            graphite[f"p{q} mean of flushes"] = statistics.fmean(values) if values else math.nan
            graphite[f"p{q} max of flushes"] = max(values) if values else math.nan
        truth = percentiles([a.seconds * 1000 for a in answered])
        promql = {
            backend: source.percentiles_between(since, until) for backend, source in self.promql.items()
        }
        return {"truth": truth, **promql, "graphite": graphite}

    def _detections(self, name: str, start: float) -> dict[str, Callable[[], bool]]:
        """For a burst: per backend, whether its dashboard query shows half the injected fault yet."""
        q, first_slot = self.queries, math.floor(start / self.flush) * self.flush
        if name == "error burst":
            threshold = self.scenario.error_rate / 2
            return {
                **{
                    backend: source.reaches(source.queries.error_ratio(), threshold)
                    for backend, source in self.promql.items()
                },
                "graphite": lambda: any(
                    ratio >= threshold for _, ratio in self.graphite_error_ratios(first_slot)
                ),
            }
        if name == "latency burst":
            threshold_ms = self.scenario.latency_ms / 2
            return {
                **{
                    backend: source.reaches(source.queries.quantile(0.95), threshold_ms / 1000)
                    for backend, source in self.promql.items()
                },
                "graphite": lambda: any(
                    value >= threshold_ms
                    for _, value in self.graphite.points(q.graphite_upper(95), first_slot)
                ),
            }
        return {}

    def graphite_error_ratios(self, start: float, end: float | None = None) -> list[tuple[float, float]]:
        """Per flush slot: the 5xx share of `/`'s requests, as the push dashboard computes it."""
        totals: dict[float, float] = {}
        errors: dict[float, float] = {}
        for slot, value in self.graphite.points(self.queries.graphite_total, start, end):
            totals[slot] = totals.get(slot, 0) + value
        for slot, value in self.graphite.points(self.queries.graphite_errors, start, end):
            errors[slot] = errors.get(slot, 0) + value
        return [(slot, errors.get(slot, 0) / total) for slot, total in sorted(totals.items()) if total]

    def _charts(self, start: float, end: float, phases: list[Phase]) -> dict:
        """The series of each chart (Result.charts): the truth per second, the backends as dashboards."""
        q, flush = self.queries, self.flush

        def line(points, every: float):
            """Seconds since the start; a break wherever two points are further apart than their period."""
            out, last = [], None
            for t, v in points:
                if not start <= t <= end:
                    continue
                if last is not None and t - last > 1.5 * every:
                    out.append(((t + last) / 2 - start, math.nan))
                out.append((t - start, v))
                last = t
            return out

        def promql(query: Callable[[RouteQueries], str], scale: float) -> dict[str, list]:
            """Each PromQL backend's line of `query` (times `scale`: percent, ms)."""
            return {
                backend: line(
                    ((t, scale * v) for t, v in source.series(query(source.queries), start, end)), source.step
                )
                for backend, source in self.promql.items()
            }

        answers = [a for phase in phases for a in phase.answers if a.status]
        per_second = dict(truth_by_second(answers))
        sent = [(second + 0.5, len(per_second.get(second, ()))) for second in range(int(start), int(end) + 1)]
        by_second = per_second.items()
        error_percent = ((s + 0.5, 100 * sum(a.status >= 500 for a in g) / len(g)) for s, g in by_second)
        p95_ms = ((s + 0.5, _p95([1000 * a.seconds for a in g])) for s, g in by_second)
        return {
            "traffic": {
                "truth": line(sent, 1),
                **promql(RouteQueries.rate, 1),
                "graphite": line(self.graphite.points(q.graphite_rate(), start, end), flush),
            },
            "errors": {
                "truth": line(error_percent, 1),
                **promql(RouteQueries.error_ratio, 100),
                "graphite": line(((t, 100 * v) for t, v in self.graphite_error_ratios(start, end)), flush),
            },
            "latency": {
                "truth": line(p95_ms, 1),
                **promql(lambda queries: queries.quantile(0.95), 1000),
                "graphite": line(self.graphite.points(q.graphite_upper(95), start, end), flush),
            },
        }

    def _alerts(self, start: float, end: float) -> tuple[list[Firing], dict[str, str]]:
        """Each stretch an alert fired in the run, with its notifications; and what could not be asked.

        A sink or an Alertmanager that does not answer leaves its part of the
        times out (None), and says why in the second value: the run's other
        figures stand without them.
        """
        step = max(ALERT_STEP_SECONDS, (end - start) / MAX_POINTS)
        firings = [
            Firing(name, severity, fired is None, fired, resolved)
            for name, severity in alert_severities().items()
            for fired, resolved in firing_spans(self._firing_times(name, start, end, step), start, end, step)
        ]
        firings.sort(key=lambda firing: (firing.fired_at or start, firing.alertname))
        missing = {}
        notifications, missing["alert_sink"] = answer_or_reason(lambda: self.alert_sink.notifications(start))
        if notifications is not None:
            note_notifications(firings, notifications, slack=step)
            missing["alertmanager"] = self._note_why_not_notified(firings)
        return firings, {service: reason for service, reason in missing.items() if reason}

    def _note_why_not_notified(self, firings: list[Firing]) -> str | None:
        """Say why no notification came of each alert that fired in the run (Alertmanager's answer);
        return why it cannot be said, if Alertmanager does not answer."""
        unnotified = [f for f in firings if not f.already_firing and f.notified_at is None]
        if not unnotified:
            return None  # nothing to explain: Alertmanager is not asked
        held, reason = answer_or_reason(self.alertmanager.alerts)
        if held is None:
            return reason
        for firing in unnotified:
            firing.not_notified = why_not_notified(firing.alertname, held)
        return None

    def _firing_times(self, name: str, start: float, end: float, step: float) -> list[float]:
        """The points, `step` apart from `start` to `end`, at which Prometheus fired alert `name` (any of
        its series: one per route, say)."""
        query = f"max(ALERTS{{{is_('alertstate', 'firing')}, {is_('alertname', name)}}})"
        return [t for t, _ in self.prometheus.series(query, start, end, step)]


def alert_severities() -> dict[str, str]:
    """Each alert the stack's Prometheus evaluates (lab/rules.py) -> its severity label ("" if none)."""
    return {rule["alert"]: rule.get("labels", {}).get("severity", "") for rule in rules("alert")}


def firing_spans(
    times: list[float], start: float, end: float, step: float
) -> list[tuple[float | None, float | None]]:
    """(fired, resolved) of each unbroken run of `times`, the points of a range query `step` apart.

    Each is the first point that showed the change: fired None when the alert was
    firing at `start` already, resolved None when it still was at `end`.
    """
    runs: list[list[float]] = []
    for t in times:
        if runs and t - runs[-1][1] < 1.5 * step:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return [
        (None if first < start + step / 2 else first, None if last > end - step else last + step)
        for first, last in runs
    ]


def note_notifications(firings: list[Firing], notifications: list[dict], slack: float) -> None:
    """Set when each firing's notifications reached the sink: the first of its alert after it fired
    (firing) or resolved (resolved), before the same alert fired again.

    `slack`: how much earlier than `fired_at` and `resolved_at` the change may have
    happened (they are the first points that showed it).
    """
    for firing in firings:
        later = [f.fired_at for f in firings if f.alertname == firing.alertname and f is not firing]
        before = min((t for t in later if t is not None and t > (firing.fired_at or 0)), default=math.inf)
        if firing.fired_at is not None:
            firing.notified_at = first_received(
                notifications, firing.alertname, "firing", firing.fired_at - slack, before
            )
        if firing.resolved_at is not None:
            firing.resolved_notified_at = first_received(
                notifications, firing.alertname, "resolved", firing.resolved_at - slack, before
            )


def first_received(
    notifications: list[dict], alertname: str, status: str, after: float, before: float
) -> float | None:
    """When the sink first received alert `alertname` with `status` between `after` and `before`."""
    return next(
        (
            item["received_at"]
            for item in notifications
            if after <= item["received_at"] < before
            and any(
                alert["status"] == status and alert["labels"].get("alertname") == alertname
                for alert in item["alerts"]
            )
        ),
        None,
    )


def why_not_notified(alertname: str, held: list[dict]) -> str:
    """Why no notification of `alertname` reached the sink, from the alerts Alertmanager holds now."""
    names = {alert["fingerprint"]: alert["labels"].get("alertname", "?") for alert in held}
    statuses = [alert["status"] for alert in held if alert["labels"].get("alertname") == alertname]
    inhibitors = sorted({names.get(fp, fp) for status in statuses for fp in status.get("inhibitedBy") or []})
    silences = sorted({silence for status in statuses for silence in status.get("silencedBy") or []})
    if inhibitors:
        return f"inhibited by {', '.join(inhibitors)}"
    if silences:
        return f"silenced by silence {', '.join(silences)}"
    if statuses:
        return f"Alertmanager still holds it ({statuses[0]['state']}) at the end of the run"
    return "Alertmanager no longer holds it"


def answer_or_reason(ask: Callable) -> tuple[object, str | None]:
    """(`ask()`'s answer, None), or (None, why the service gave none): the run goes on without it."""
    try:
        return ask(), None
    except BackendError as error:
        return None, str(error)
    except requests.RequestException as error:
        url = error.request.url if error.request is not None else "it"
        return None, f"{url} does not answer ({type(error).__name__})"


class Detector(threading.Thread):
    """Poll each backend until it shows the burst; remember when (seconds after `start`)."""

    def __init__(self, checks: dict[str, Callable[[], bool]], start: float):
        super().__init__(daemon=True)
        self.checks = checks
        self.start_time = start
        self.found: dict[str, float | None] = dict.fromkeys(checks)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set() and None in self.found.values():
            self._look()
            self._stop_event.wait(POLL_SECONDS)

    def _look(self) -> None:
        for backend, check in self.checks.items():
            if self.found[backend] is None and check():
                self.found[backend] = time.time() - self.start_time

    def stop(self) -> None:
        """Stop polling, after one last look: the points that settled the phase may be newer than it."""
        self._stop_event.set()
        self.join()
        self._look()


def otlp_receiver(prometheus: str, native_receiver: str) -> str:
    """Where the OTLP push's series are: in Prometheus when it runs its OTLP receiver (compose),
    else in the native stack's receiver, `native_receiver` (Prometheus there only scrapes)."""
    flags = Prometheus(prometheus.rstrip("/")).flags()
    return prometheus if flags.get("web.enable-otlp-receiver") == "true" else native_receiver


def percentiles(values_ms: list[float]) -> dict[str, float]:
    if len(values_ms) < 2:
        return {"p95": math.nan, "p99": math.nan}
    cuts = statistics.quantiles(values_ms, n=100, method="inclusive")
    return {"p95": cuts[94], "p99": cuts[98]}


def truth_by_second(answers) -> list[tuple[int, list]]:
    """The answers grouped by the second they were sent in."""
    groups: dict[int, list] = {}
    for answer in answers:
        groups.setdefault(int(answer.sent_at), []).append(answer)
    return sorted(groups.items())


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94] if len(values) > 1 else values[0]


def summary(result: Result) -> dict:
    """Every figure of the report, as result.json holds it (but NaN where it has null)."""
    return {
        "scenario": asdict(result.scenario),
        "urls": result.urls,
        "scrape_seconds": result.scrape_seconds,
        "flush_seconds": result.flush_seconds,
        "export_seconds": result.export_seconds,
        "started": result.started,
        "finished": result.finished,
        "phases": [
            {
                "name": phase.name,
                "faults": phase.faults,
                "start": phase.start,
                "end": phase.end,
                "seconds": phase.end - phase.start,
                "sent": len(phase.answers),
                "truth": _counts(phase.truth),
                **{backend: _counts(counts) for backend, counts in phase.counted.items()},
                "latency_ms": phase.latency,
                "detected_after_seconds": phase.detected,
                "saturation_peak": phase.saturation_peak,
            }
            for phase in result.phases
        ],
        "charts": result.charts,
        "alerts": [asdict(firing) for firing in result.alerts],
        "alerts_missing": result.alerts_missing,
    }


def _counts(counts: Counts) -> dict:
    return {**asdict(counts), "error_ratio": counts.error_ratio}


def save(result: Result, out: Path) -> Path:
    """Write `out`/result.json (`out` created); return its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "result.json"
    path.write_text(json.dumps(_no_nan(summary(result)), indent=2) + "\n")
    return path


def _no_nan(value):
    """NaN (no value) as null: JSON has no NaN. Tuples (chart points) become lists, as JSON has them."""
    if isinstance(value, dict):
        return {key: _no_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


BAR = "{desc:<34} {percentage:3.0f}%|{bar:30}| {n:.0f}/{total:.0f} s"

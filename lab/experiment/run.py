"""RUNDOC"""

import math
import statistics
import sys
import threading
import time
from collections.abc import Callable

from tqdm import tqdm

from .. import traffic
from ..backends import Alertmanager, AlertSink, Graphite, Prometheus
from ..fault_control import FaultControl
from ..polling import Unsettled, settled
from ..queries import (
    STATSD_OWN_SERIES,
    Pipelines,
    is_,
)
from ..settings import BACKENDS, PHASES, ROUTE_UNDER_TEST
from .alerts import (
    ALERT_STEP_SECONDS,
    MAX_POINTS,
    alert_severities,
    answer_or_reason,
    firing_spans,
    note_notifications,
    why_not_notified,
)
from .queries import PromQLSource, Queries, RouteQueries
from .result import Counts, Firing, Mark, Phase, Plan, Result

POLL_SECONDS = 0.25
# How much later than its data the OTLP receiver may show a series new to a query it answered before
# (the first 5xx of `/`, born in the error burst): VictoriaMetrics, the native twin, caches which
# series match a query's filters and resets that cache once per 10 s plus jitter (lib/mergeset).
RECEIVER_CACHE_SECONDS = 11
# How many slowest periods the totals get to stop moving before the experiment starts.
QUIET_TRIES = 3


class ExperimentError(RuntimeError):
    """The stack is not in a state the experiment can measure; the message says why."""


class Experiment:
    def __init__(
        self,
        scenario: Plan,
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
            Pipelines.of_stack(
                prefix=self.prefix,
                scrape_seconds=self.scrape,
                export_seconds=self.export,
                service=self.service,
            )
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
        try:
            return Mark(time.time(), settled(self._cumulative, self._slowest_period() + 1, tries=QUIET_TRIES))
        except Unsettled as error:
            first, after = error.first, error.last
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

        answers = traffic.send(self.app + ROUTE_UNDER_TEST, self.scenario.rate, seconds, tick=tick)
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
        quiet = self._quiet_seconds()
        try:
            return settled(self._cumulative, quiet, expected=expected, poll=POLL_SECONDS, timeout=10 * quiet)
        except Unsettled as error:
            return error.last  # still moving: what each backend holds now, short of or past the truth

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


BAR = "{desc:<34} {percentage:3.0f}%|{bar:30}| {n:.0f}/{total:.0f} s"

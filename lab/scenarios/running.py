"""What the scenarios run and read: the app under real gunicorn, the native push stack, a scrape.

A server is the lab's app under app/gunicorn.conf.py, or under a naive setup's
gunicorn config (lab/scenarios/naive, or a peer of lab/peers), on a free
loopback port with a multiprocess directory of its own (or none, for the
default registry). The push stack is the native runner's carbon, StatsD and
graphite-web (lab/stack/services.py), configured as `make native` configures them (prepare.py).
Every process dies with the scenario (lab/stack/processes.py `die_with_parent`).
"""

import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple, TypeVar

import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ..backends import Graphite, OtlpReceiver
from ..polling import Unsettled, wait_for
from ..polling import settled as settled_reading
from ..queries import STATSD_OWN_SERIES, OtelQueries, is_
from ..settings import LOOPBACK, ROUTE_UNDER_TEST, UNRESOLVABLE, Ports, free_port, route
from ..stack import native, native_config, prepare
from ..stack import services as stack_services
from ..stack.gunicorn import LAB_CONFIG, STOP_TIMEOUT, Gunicorn
from ..stack.processes import stop_all

INDEX = route(ROUTE_UNDER_TEST)  # the route every scenario loads: its URL rule and its StatsD endpoint
T = TypeVar("T")
PUSH_SERVICES = ("carbon", "statsd", "graphite-web")  # of lab/stack/services.py's, the push side


class ScenarioError(RuntimeError):
    """The scenario could not measure what it meant to (the message says what went wrong)."""


def naive_config(module: str) -> str:
    """A gunicorn --config for a naive setup of lab/scenarios/naive."""
    return f"python:{__package__}.naive.{module}"


class ScenarioServer(Gunicorn):
    """A scenario's gunicorn (stack/gunicorn.py), named in its report, and what the scenario reads of it."""

    def __init__(self, label: str, config: str, **options):
        super().__init__(config, name=f"gunicorn ({label}: {config})", **options)
        self.name = label  # in the scenario's tables

    def get(self, path: str) -> int:
        """GET `path` on a new connection; the status (4xx and 5xx are answers too)."""
        return requests.get(self.url + path, timeout=30).status_code

    def scrape(self) -> list[Sample]:
        response = requests.get(self.metrics_url, timeout=30)
        response.raise_for_status()
        return [
            sample for family in text_string_to_metric_families(response.text) for sample in family.samples
        ]

    def files(self) -> int:
        """The multiprocess files a scrape reads."""
        return len(self.db_files())


@contextmanager
def gunicorn(
    name: str,
    logs: Path,
    config: str = LAB_CONFIG,
    *,
    metrics: str,
    multiprocess: bool = True,
    peer_metrics: bool = False,
    **settings,
) -> Iterator[ScenarioServer]:
    """Start gunicorn at once (call `ready` to wait); stop it when the block ends.

    `metrics` is LAB_METRICS, always chosen: the default, `all`, also exports
    OTLP to a receiver that is not there, and retries it for seconds at exit.
    `settings` are the app's other variables (app/config.py); the developer's
    own exported ones are left out, so only these and the defaults apply.
    `peer_metrics`: the config serves /metrics from gunicorn's master on a port
    of its own (PEER_METRICS_PORT, as lab/peers/flask_exporter.py does).
    """
    # Nothing leaves the machine: a StatsD host is named only where the scenario reads it.
    env = {"STATSD_HOST": UNRESOLVABLE, **settings, "LAB_METRICS": metrics}
    server = ScenarioServer(
        name,
        config,
        env=env,
        log=logs / f"gunicorn-{name}.log",
        multiprocess=multiprocess,
        inherit_app_settings=False,
        peer_metrics=peer_metrics,
    )
    with server:
        yield server


def ready(*servers: ScenarioServer) -> None:
    """Wait until every server answers (they boot side by side)."""
    for server in servers:
        server.wait_ready()


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(
        sample.value for sample in samples if sample.name == name and labels.items() <= sample.labels.items()
    )


def resets(values: list[float]) -> int:
    """How many times a counter read in turn went down: what PromQL's resets() counts."""
    return sum(later < earlier for earlier, later in pairwise(values))


def settled(read: Callable[[], T], interval: float, timeout: float = 30.0) -> T:
    """Read until two reads `interval` apart agree (whatever was in transit has arrived)."""
    try:
        return settled_reading(read, interval, timeout=timeout)
    except Unsettled as error:
        raise ScenarioError(str(error)) from None


def ok(answers) -> int:
    """How many of lab/traffic.py's answers were 200."""
    return sum(answer.status == 200 for answer in answers)


@dataclass(frozen=True)
class PushStack:
    statsd_port: int
    graphite: Graphite
    flush_seconds: int

    def flushed_after(self, moment: float, timeout: float = 30.0) -> None:
        """Return once StatsD has flushed, into Graphite, what it received before `moment` (epoch s)."""

        # A later slot than `moment`'s: that flush left after everything sent before `moment`.
        def flushed(points) -> bool:
            return any(t >= moment + self.flush_seconds for t, _ in points)

        if not flushed(wait_for(lambda: self.graphite.points(STATSD_OWN_SERIES, moment), flushed, timeout)):
            raise ScenarioError(f"StatsD did not flush into Graphite within {timeout:g} s")


@contextmanager
def push_stack(logs: Path, flush_seconds: int, schemas: str | None = None) -> Iterator[PushStack]:
    """carbon, StatsD (flushing every `flush_seconds`) and graphite-web, as `make native` runs them.

    `schemas`: carbon's storage-schemas.conf, if not the lab's (whose finest
    StatsD archive is `flush_seconds`, lab/stack/native_config.py).
    """
    ports = Ports(
        **{
            port.name: free_port(socket.SOCK_DGRAM if port.name == "statsd" else socket.SOCK_STREAM)
            for port in fields(Ports)
        }
    )
    with tempfile.TemporaryDirectory(prefix="scenario-push-") as data:
        data_dir = Path(data)
        graphite_env = prepare.prepare(ports, data_dir, flush_seconds, None)
        if schemas is not None:
            # prepare() wrote the lab's here, in carbon's CONF_DIR (lab/stack/native_config.py carbon_config)
            (data_dir / "carbon" / "storage-schemas.conf").write_text(schemas)
        services = [
            service
            for service in stack_services.services(ports, data_dir, graphite_env, loadgen=False)
            if service.name in PUSH_SERVICES
        ]
        try:
            for service in services:
                native.start(service, logs)
            yield PushStack(ports.statsd, Graphite(f"http://{LOOPBACK}:{ports.graphite}"), flush_seconds)
        finally:
            # the last started first: graphite-web, then StatsD, then carbon
            stop_all([service.process for service in reversed(services) if service.process], STOP_TIMEOUT)


def pushed_requests(receiver: OtlpReceiver, service: str, route: str) -> "Pushed":
    """What `receiver` stores of `service`'s request count on `route`, read as the lab's queries read it."""
    otel = OtelQueries(scope=(is_("job", service),))
    count = otel.select(otel.names.requests, is_(otel.names.route, route))
    return Pushed(
        total=receiver.value(otel.total(is_(otel.names.route, route))),
        resets=receiver.value(f"sum(resets({count}[{otel.since}]))"),
        instances=round(receiver.value(f"count(count by (instance) ({count}))")),
    )


class Pushed(NamedTuple):
    total: float  # sum(last_over_time(...)): each series' latest cumulative count, added up
    resets: float  # how often a stored count went down: several writers' totals interleaved
    instances: int  # the series the receiver tells apart


@contextmanager
def otlp_receiver(logs: Path) -> Iterator[OtlpReceiver]:
    """VictoriaMetrics as `make native` runs it for the OTLP push, on a free port, until the block ends."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="scenario-otlp-") as data:
        data_dir = Path(data)
        native_config.write_otlp_relabel(data_dir)
        service = stack_services.otlp_receiver_service("otlp-receiver", port, data_dir, {"query": "up"})
        try:
            native.start(service, logs)
            yield OtlpReceiver(f"http://{LOOPBACK}:{port}")
        finally:
            if service.process is not None:
                stop_all([service.process], STOP_TIMEOUT)

"""What `lab where` can be asked about: every name of the contract (app/signals.py), by any of the
names a person would type, and the four golden signals.

A subject is one constant of the contract: a scraped metric (HTTP_REQUESTS), a
StatsD template (STATSD_REQUESTS) or an OTLP instrument (OTEL_REQUEST_DURATION),
with every series name it has in the backends.

    resolve("http_requests_total")     # [Subject HTTP_REQUESTS]
    resolve("lab.app.http.requests")   # [Subject STATSD_REQUESTS]
    resolve("traffic")                 # its subject in each pipeline
"""

import difflib
from dataclasses import dataclass

from app import signals

from ..queries import COUNTS, GAUGES, PER_SECOND, TIMERS, with_free_nodes

PULL, STATSD, OTLP = "pull", "StatsD push", "OTLP push"


@dataclass(frozen=True)
class Subject:
    constant: str  # its name in app/signals.py
    pipeline: str  # PULL, STATSD or OTLP
    name: str  # as the app emits it: a metric name, `prefix.template`, an instrument name
    kind: str  # counter, histogram, gauge, summary, timer, up_down_counter
    prometheus: tuple[str, ...] = ()  # the series Prometheus (or the OTLP receiver) stores
    graphite: tuple[str, ...] = ()  # the Graphite series StatsD writes, a `*` for each free node

    @property
    def words(self) -> tuple[str, ...]:
        """What names it in code and text: its constant and every name of its series."""
        stem = self.name.split(".{")[0]
        return (self.constant, self.name, stem, *self.prometheus)


def _statsd(constant: str, template: str, kind: str) -> Subject:
    path = f"{signals.STATSD_PREFIX}.{with_free_nodes(template)}"
    series = {
        "counter": (f"{COUNTS}.{path}", f"{PER_SECOND}.{path}"),
        "timer": (f"{TIMERS}.{path}.*",),
        "gauge": (f"{GAUGES}.{path}",),
    }[kind]
    return Subject(constant, STATSD, f"{signals.STATSD_PREFIX}.{template}", kind, graphite=series)


def catalog() -> list[Subject]:
    """Every subject of the contract, in the order app/signals.py defines them."""
    constants = {id(value): name for name, value in vars(signals).items() if name.isupper()}
    subjects = [
        Subject(constants[id(metric)], PULL, metric.name, metric.kind, prometheus=metric.series())
        for metric in signals.PULL_METRICS
    ]
    for kind, templates in signals.STATSD_NAMES.items():
        for template in templates:
            (constant,) = [
                name for name, value in vars(signals).items() if name.isupper() and value == template
            ]
            subjects.append(_statsd(constant, template, kind))
    for instrument in signals.OTEL_INSTRUMENTS:
        metric = instrument.metric
        subjects.append(
            Subject(
                constants[id(instrument)], OTLP, instrument.name, instrument.kind, prometheus=metric.series()
            )
        )
    return subjects


# Each golden signal: the constants that carry it, in each pipeline.
SIGNALS = {
    "latency": ("HTTP_REQUEST_DURATION", "STATSD_LATENCY", "OTEL_REQUEST_DURATION"),
    "traffic": ("HTTP_REQUESTS", "STATSD_REQUESTS", "OTEL_REQUEST_DURATION"),
    "errors": ("HTTP_REQUESTS", "STATSD_REQUESTS", "OTEL_REQUEST_DURATION"),
    "saturation": (
        "HTTP_IN_FLIGHT",
        "HTTP_CAPACITY",
        "STATSD_IN_FLIGHT",
        "OTEL_ACTIVE_REQUESTS",
        "OTEL_CAPACITY",
        "PROCESS_CPU",
        "PROCESS_MEMORY",
        "STATSD_PROCESS_CPU",
        "STATSD_PROCESS_MEMORY",
        "OTEL_PROCESS_CPU",
        "OTEL_PROCESS_MEMORY",
    ),
}


def names() -> dict[str, list[Subject]]:
    """Every name `lab where` takes (lower case) -> the subjects it means."""
    table: dict[str, list[Subject]] = {}
    subjects = catalog()
    by_constant = {subject.constant: subject for subject in subjects}
    for subject in subjects:
        for word in {*subject.words, *subject.graphite}:
            table.setdefault(word.lower(), []).append(subject)
        if subject.pipeline == STATSD:  # the template alone, without the prefix
            table.setdefault(
                subject.name.removeprefix(signals.STATSD_PREFIX + ".").split(".{")[0], []
            ).append(subject)
    for signal, constants in SIGNALS.items():
        table[signal] = [by_constant[constant] for constant in constants]
    return table


class UnknownName(LookupError):
    """A name the contract does not define; the message names the closest ones."""


def resolve(name: str) -> list[Subject]:
    """The subjects `name` means: a metric or series name, a StatsD name (with or without its prefix,
    or a Graphite series of it), an OTLP instrument, a constant of app/signals.py, a golden signal."""
    table = names()
    found = table.get(name.strip().lower())
    if found:
        return list(dict.fromkeys(found))
    closest = difflib.get_close_matches(name.strip().lower(), table, n=5, cutoff=0.5)
    hint = f"; the closest: {', '.join(closest)}" if closest else ""
    raise UnknownName(f"{name!r} is no name of the contract (app/signals.py){hint}")

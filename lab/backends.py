"""Talk to the backends through their HTTP APIs: Prometheus (PromQL), Graphite (render),
Alertmanager (API v2) and the lab's webhook sink (lab/stack/alert_sink.py).

Used by `lab experiment`, `lab alerts` and by the integration tests, which talk
to a stack through URLs only.
"""

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
import yaml

from .settings import duration_seconds


class BackendError(RuntimeError):
    """A backend answered with an error; the message carries the query and the answer."""


def _get(url: str, params: dict) -> requests.Response:
    return _call("GET", url, params=params)


def _call(method: str, url: str, **kwargs) -> requests.Response:
    response = requests.request(method, url, timeout=10, **kwargs)
    if response.status_code != 200:
        raise BackendError(f"{method} {response.url}: HTTP {response.status_code}: {response.text[-500:]}")
    return response


@dataclass(frozen=True)
class Prometheus:
    url: str

    def value(self, query: str, at: float | None = None, empty: float = 0.0) -> float:
        """The value of a PromQL expression that sums to one number; `empty` when it has no series.

        No series is 0 for a count (nothing happened yet) but no value at all for a quantile: NaN.
        """
        params = {"query": query} if at is None else {"query": query, "time": at}
        result = _get(f"{self.url}/api/v1/query", params).json()["data"]["result"]
        return float(result[0]["value"][1]) if result else empty

    def by(self, query: str, label: str, at: float | None = None) -> dict[str, float]:
        """The value of each series of a PromQL expression, by one of its labels."""
        params = {"query": query} if at is None else {"query": query, "time": at}
        result = _get(f"{self.url}/api/v1/query", params).json()["data"]["result"]
        return {series["metric"].get(label, ""): float(series["value"][1]) for series in result}

    def samples_read(self, query: str) -> int:
        """How many samples an instant query of `query` reads now (its `stats=all`)."""
        params = {"query": query, "stats": "all"}
        return int(
            _get(f"{self.url}/api/v1/query", params).json()["data"]["stats"]["samples"][
                "totalQueryableSamples"
            ]
        )

    def rule_group_intervals(self) -> dict[str, float]:
        """How often each of its rule groups runs, in seconds, by group name (its /api/v1/rules)."""
        groups = _get(f"{self.url}/api/v1/rules", {}).json()["data"]["groups"]
        return {group["name"]: float(group["interval"]) for group in groups}

    def flags(self) -> dict[str, str]:
        """The command-line flags the server runs with (Prometheus's /api/v1/status/flags)."""
        return _get(f"{self.url}/api/v1/status/flags", {}).json()["data"]

    def sample_times(self, selector: str, start: float, end: float) -> list[list[float]]:
        """The raw samples' times of each series of `selector` from `start` to `end` (an instant query of
        a range selector, which Prometheus and VictoriaMetrics both answer with the samples themselves)."""
        params = {"query": f"{selector}[{max(1, math.ceil(end - start))}s]", "time": end}
        result = _get(f"{self.url}/api/v1/query", params).json()["data"]["result"]
        return [[float(t) for t, _ in series["values"]] for series in result]

    def series(self, query: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        """(time, value) points of a range query, summed to one series; NaN points dropped."""
        params = {"query": query, "start": start, "end": end, "step": step}
        result = _get(f"{self.url}/api/v1/query_range", params).json()["data"]["result"]
        points = [(float(t), float(v)) for series in result[:1] for t, v in series["values"]]
        return [(t, v) for t, v in points if math.isfinite(v)]

    def config(self) -> dict:
        """The configuration it runs, with its defaults filled in."""
        return yaml.safe_load(_get(f"{self.url}/api/v1/status/config", {}).json()["data"]["yaml"])

    def evaluation_interval(self) -> float:
        """How often it evaluates the rules, in seconds."""
        return duration_seconds(self.config()["global"]["evaluation_interval"])

    def scrape_interval(self, job: str = "app") -> float:
        """The scrape interval Prometheus uses for `job`, in seconds."""
        config = self.config()
        interval = config["global"].get("scrape_interval", "1m")
        for scrape in config.get("scrape_configs", []):
            if scrape["job_name"] == job:
                interval = scrape.get("scrape_interval", interval)
        return duration_seconds(interval)


# Where the OTLP push reaches the native stack's receiver: VictoriaMetrics's OpenTelemetry path.
OTLP_RECEIVER_PATH = "/opentelemetry/v1/metrics"


@dataclass(frozen=True)
class OtlpReceiver(Prometheus):
    """The native stack's OTLP receiver (VictoriaMetrics), read for exact counts.

    It makes what it received searchable every few seconds, and by default answers at the current
    second: each read flushes first, then asks at this moment."""

    @property
    def endpoint(self) -> str:
        """Where the app exports (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)."""
        return self.url + OTLP_RECEIVER_PATH

    def flush(self) -> None:
        _get(f"{self.url}/internal/force_flush", {})

    def value(self, query: str, at: float | None = None, empty: float = 0.0) -> float:
        self.flush()
        return super().value(query, time.time() if at is None else at, empty)

    def by(self, query: str, label: str, at: float | None = None) -> dict[str, float]:
        self.flush()
        return super().by(query, label, time.time() if at is None else at)


@dataclass(frozen=True)
class Graphite:
    url: str

    def render(self, target: str, start: float, end: float | None = None) -> list[dict]:
        """The render API's JSON: each series `target` names, with its datapoints ([value, time])."""
        params = {"target": target, "from": int(start), "until": "now" if end is None else int(end) + 1}
        return _get(f"{self.url}/render", {**params, "format": "json"}).json()

    def points(self, target: str, start: float, end: float | None = None) -> list[tuple[float, float]]:
        """(timestamp, value) of every non-empty point of `target`, over every series it names."""
        series = self.render(target, start, end)
        return sorted((float(t), v) for s in series for v, t in s["datapoints"] if v is not None)

    def last(self, target: str, start: float) -> dict[str, float]:
        """The latest non-empty point of each series of `target` since `start`, by its name."""
        found = {}
        for series in self.render(target, start):
            points = [value for value, _ in series["datapoints"] if value is not None]
            if points:
                found[series["target"]] = points[-1]
        return found

    def total(self, target: str, start: float) -> float:
        """The sum of every point of `target` since `start`."""
        return sum(value for _, value in self.points(target, start))

    def step(self, target: str, start: float) -> float | None:
        """The seconds between two points of `target` (its finest retention), if it has points."""
        series = self.render(target, start)
        if not series or len(series[0]["datapoints"]) < 2:
            return None
        (_, first), (_, second) = series[0]["datapoints"][:2]
        return float(second - first)


@dataclass(frozen=True)
class Alertmanager:
    """The parts of Alertmanager's API v2 the lab uses."""

    url: str

    def alerts(self, **labels: str) -> list[dict]:
        """The alerts it holds with these labels (active, silenced or inhibited: see `status.state`)."""
        matchers = [f'{name}="{value}"' for name, value in labels.items()]
        return _get(f"{self.url}/api/v2/alerts", {"filter": matchers}).json()

    def silence(self, minutes: float, comment: str, **labels: str) -> str:
        """Silence the alerts with these labels from now on, for `minutes`; return the silence's id."""
        now = time.time()
        body = {
            "matchers": [{"name": name, "value": value, "isRegex": False} for name, value in labels.items()],
            "startsAt": _rfc3339(now),
            "endsAt": _rfc3339(now + minutes * 60),
            "createdBy": "observability-lab",
            "comment": comment,
        }
        return _call("POST", f"{self.url}/api/v2/silences", json=body).json()["silenceID"]

    def expire(self, silence_id: str) -> None:
        _call("DELETE", f"{self.url}/api/v2/silence/{silence_id}")

    def silences(self) -> list[dict]:
        """Every silence it holds: active, pending and expired (see `status.state`)."""
        return _get(f"{self.url}/api/v2/silences", {}).json()

    def peers(self) -> list[str]:
        """The gossip addresses of the cluster's members it sees, itself included."""
        return [peer["address"] for peer in _get(f"{self.url}/api/v2/status", {}).json()["cluster"]["peers"]]

    def config(self) -> dict:
        """The configuration it runs, with its defaults filled in."""
        return yaml.safe_load(_get(f"{self.url}/api/v2/status", {}).json()["config"]["original"])


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass(frozen=True)
class AlertSink:
    """The lab's webhook sink: what Alertmanager delivered (lab/stack/alert_sink.py)."""

    url: str

    def notifications(self, since: float | None = None) -> list[dict]:
        """The notifications received after `since` (epoch seconds; None: all it kept), oldest first."""
        params = {} if since is None else {"since": repr(since)}
        return _get(f"{self.url}/notifications", params).json()["notifications"]


def not_answering(command: str, url: str) -> str:
    """What a command says when a URL of the stack does not answer."""
    return f"lab {command}: {url} does not answer: is the stack running (make native, or make up)?"

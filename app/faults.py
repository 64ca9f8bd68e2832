"""Fault injection: make requests fail or slow down on purpose, at runtime.

    GET    /faults     the faults in force (anyone may look)
    PUT    /faults     replace them: {"error_rate": 0.2, "latency_ms": 300,
                                      "routes": {"/database/": {"error_rate": 1}}}
                       also "cpu_ms" (CPU each request burns) and "leak_mb"
                       (memory each request keeps), to saturate a worker
    DELETE /faults     clear them

Writes need `Authorization: Bearer <LAB_ADMIN_TOKEN>`; with no token configured
they answer 403. The faults live in one small JSON file that every gunicorn
worker of this instance reads (LAB_FAULTS_FILE): a write replaces it atomically,
and each worker looks at its mtime at most every REFRESH_SECONDS, so a change
reaches every worker within a second, with no lock and no restart.

Faults apply to the app's own routes only: `/metrics`, `/healthz` and `/faults`
never fail on purpose, or the scrape, the container's health check and the way
back out would break with them.

Memory leaked by `leak_mb` is kept per worker, up to MAX_LEAK_MB, and let go
as soon as no fault leaks any more (the next request after the change): a
worker's resident memory climbs while the fault is on and falls back after.

The faults in force are data too: `in_force(app)` is what the app's metrics
export (app/pull.py's gauges at scrape time, app/push.py's reporter thread).
"""

import functools
import hmac
import json
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flask import Flask, current_app, jsonify, request
from werkzeug.routing import Rule

# labels' rule -> Route, so the pushed endpoint is the one the request stats name
from .labels import Route, route_of

REFRESH_SECONDS = 0.5
MAX_LATENCY_MS = 10_000  # the top histogram bucket; gunicorn kills a worker silent for 30 s
MAX_CPU_MS = 10_000  # the same bound: CPU burnt is time the request takes
MAX_LEAK_MB_PER_REQUEST = 64
MAX_LEAK_MB = 512  # a worker's whole leak: further requests keep no more
EXEMPT_ENDPOINTS = frozenset({"metrics", "healthz", "faults"})
EXTENSION = "lab.faults"

log = logging.getLogger(__name__)


class FaultError(ValueError):
    """A fault setting out of range or unknown; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Fault:
    """What to do to a request: fail it with this probability, delay it by this much, burn this much
    CPU in it, keep this much memory after it."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    cpu_ms: float = 0.0
    leak_mb: float = 0.0


NO_FAULT = Fault()
LIMITS = {
    "error_rate": (0.0, 1.0),
    "latency_ms": (0.0, float(MAX_LATENCY_MS)),
    "cpu_ms": (0.0, float(MAX_CPU_MS)),
    "leak_mb": (0.0, float(MAX_LEAK_MB_PER_REQUEST)),
}


@dataclass(frozen=True)
class Faults:
    """The faults in force: one for every route, and overrides per URL rule."""

    default: Fault = NO_FAULT
    routes: dict[str, Fault] = field(default_factory=dict)

    def for_route(self, route: str) -> Fault:
        return self.routes.get(route, self.default)

    def to_json(self) -> dict:
        return {**asdict(self.default), "routes": {route: asdict(f) for route, f in self.routes.items()}}

    @functools.cached_property
    def leaks(self) -> bool:
        """Whether any route keeps memory (asked by every request: computed once)."""
        return any(fault.leak_mb for fault in (self.default, *self.routes.values()))

    @classmethod
    def from_json(cls, body: object, routes: frozenset[str]) -> "Faults":
        """Validate a PUT body; raise FaultError naming the first bad field."""
        if not isinstance(body, dict):
            raise FaultError("body", "expected a JSON object")
        unknown = set(body) - {*LIMITS, "routes"}
        if unknown:
            raise FaultError(sorted(unknown)[0], f"unknown field; expected {', '.join([*LIMITS, 'routes'])}")
        default = _fault(body, "")
        per_route = body.get("routes", {})
        if not isinstance(per_route, dict):
            raise FaultError("routes", "expected an object of URL rule -> fault")
        overrides = {}
        for route, settings in per_route.items():
            if route not in routes:
                raise FaultError(
                    f"routes.{route}", f"not a route of this app; expected one of {sorted(routes)}"
                )
            if not isinstance(settings, dict) or set(settings) - set(LIMITS):
                raise FaultError(f"routes.{route}", f"expected an object with any of {', '.join(LIMITS)}")
            parsed = _fault(settings, f"routes.{route}.")
            # An override starts from the default: {"latency_ms": 300} keeps the default error rate.
            overrides[route] = Fault(
                **{name: getattr(parsed if name in settings else default, name) for name in LIMITS}
            )
        return cls(default, overrides)


NO_FAULTS = Faults()  # what the store holds with no faults file: `inject` returns at once


def _fault(settings: dict, prefix: str) -> Fault:
    values = {}
    for name, (low, high) in LIMITS.items():
        if name not in settings:
            continue
        value = settings[name]
        # bool is an int to Python, not a number to a person
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise FaultError(f"{prefix}{name}", f"expected a number from {low:g} to {high:g}, got {value!r}")
        values[name] = float(value)
    return Fault(**values)


class FaultStore:
    """The faults file shared by the workers, re-read when it changes."""

    def __init__(self, path: Path):
        self.path = path
        self._faults = NO_FAULTS
        self._seen = None  # (inode, mtime) of the file last read
        self._next_check = 0.0
        # Request threads, the scrape and the StatsD reporter thread all read: one reloads at a
        # time, or a slow reader of the old file could store it after a reader of the new one.
        self._reloading = threading.Lock()

    def current(self) -> Faults:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + REFRESH_SECONDS
            with self._reloading:
                self._reload()
        return self._faults

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen, self._faults = None, NO_FAULTS
            return
        seen = (stat.st_ino, stat.st_mtime_ns)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            data = json.loads(self.path.read_text())
            self._faults = Faults(
                _stored(data), {route: _stored(fault) for route, fault in data["routes"].items()}
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            # Only PUT /faults writes this file; if someone else broke it, serve without faults.
            log.warning("ignoring unreadable faults file %s: %s", self.path, error)
            self._faults = NO_FAULTS

    def replace(self, faults: Faults) -> None:
        """Write the faults for every worker (atomically: a reader sees the old or the new file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".faults-")
        with os.fdopen(fd, "w") as file:
            json.dump(faults.to_json(), file)
        os.replace(temporary, self.path)
        self._next_check = 0.0  # this worker sees its own write at once

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self._next_check = 0.0


def _stored(settings: dict) -> Fault:
    # floats, as PUT writes them, even from a file written by hand with whole numbers; a setting
    # the file does not hold (one written before it existed) is no fault
    return Fault(**{name: float(settings.get(name, 0.0)) for name in LIMITS})


def _store() -> FaultStore:
    return current_app.extensions[EXTENSION]


def _error(status: int, message: str, **extra):
    return jsonify(error=message, **extra), status


def _authorized():
    """None when the request may write faults, else the error response."""
    token = current_app.config["LAB_ADMIN_TOKEN"]
    if not token:
        return _error(403, "fault control is off: set LAB_ADMIN_TOKEN to enable PUT and DELETE /faults")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        response, status = _error(401, "expected Authorization: Bearer <LAB_ADMIN_TOKEN>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="faults"'
        return response, status
    return None


def fault_rules(app: Flask) -> Iterator[Rule]:
    """Yield the URL rules faults apply to: every rule of the app but the exempt endpoints'."""
    return (rule for rule in app.url_map.iter_rules() if rule.endpoint not in EXEMPT_ENDPOINTS)


def in_force(app: Flask) -> dict[Route, Fault]:
    """Return the fault each route of `fault_rules` gets now (NO_FAULT where none); no request needed."""
    faults = app.extensions[EXTENSION].current()
    return {route_of(rule): faults.for_route(rule.rule) for rule in fault_rules(app)}


def faults():
    store = _store()
    if request.method == "GET":
        return store.current().to_json()
    denied = _authorized()
    if denied is not None:
        return denied
    if request.method == "DELETE":
        store.clear()
        return Faults().to_json()
    body = request.get_json(silent=True)
    if body is None:
        return _error(400, "expected a JSON body (Content-Type: application/json)", field="body")
    try:
        new = Faults.from_json(body, frozenset(rule.rule for rule in fault_rules(current_app)))
    except FaultError as error:
        return _error(400, str(error), field=error.field)
    store.replace(new)
    return new.to_json()


_leaked: list[bytes] = []  # this worker's memory kept by leak_mb


def leaked_mb() -> int:
    """The memory this worker keeps for leak_mb faults, in MB."""
    return sum(len(block) for block in _leaked) >> 20


def _burn(cpu_ms: float) -> None:
    # This thread's CPU time, not the clock's: a busy machine burns as much, only slower.
    until = time.thread_time() + cpu_ms / 1000
    while time.thread_time() < until:
        pass


def _leak(mb: float) -> None:
    room = MAX_LEAK_MB - leaked_mb()
    size = int(min(mb, room) * (1 << 20))
    if size > 0:
        # Written, not zeroed: untouched pages would not be resident, and the leak would not show.
        _leaked.append(b"\xa5" * size)


def inject():
    """Before a request of the app's own routes: delay it, burn CPU, keep memory, then maybe fail it."""
    faults = _store().current()
    if not faults.leaks and _leaked:
        _leaked.clear()
    if faults is NO_FAULTS:  # no faults file: most requests stop here, before the request proxy
        return None
    rule = request.url_rule
    if rule is None or rule.endpoint in EXEMPT_ENDPOINTS:
        return None
    fault = faults.for_route(rule.rule)
    if fault.latency_ms:
        time.sleep(fault.latency_ms / 1000)
    if fault.cpu_ms:
        _burn(fault.cpu_ms)
    if fault.leak_mb:
        _leak(fault.leak_mb)
    if fault.error_rate and random.random() < fault.error_rate:
        return _error(500, "injected fault", error_rate=fault.error_rate)
    return None


def init_app(app: Flask) -> None:
    path = app.config["LAB_FAULTS_FILE"] or os.path.join(
        tempfile.mkdtemp(prefix="lab-faults-"), "faults.json"
    )
    app.extensions[EXTENSION] = FaultStore(Path(path))
    app.add_url_rule("/faults", view_func=faults, methods=["GET", "PUT", "DELETE"])
    app.before_request(inject)

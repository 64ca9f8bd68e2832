"""Bounded label values for a request: what it was, never what the client typed.

Every value here comes from a closed set (the app's URL rules, the usual HTTP
verbs, the statuses the app answers with), so the number of series cannot grow
with what clients send.
"""

from typing import NamedTuple

from flask import Flask, Request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Rule

from .signals import OTHER_METHOD, UNMATCHED

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})


class Route(NamedTuple):
    """The URL rule a request matched: its template and its endpoint name."""

    template: str
    endpoint: str


UNMATCHED_ROUTE = Route(UNMATCHED, UNMATCHED)


def method_label(method: str) -> str:
    """Return the verb, or `other` for anything outside the usual ones."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def rule_of(app: Flask, request: Request) -> Rule | None:
    """Return the URL rule the request matched, or None.

    A 405 did match a rule by its path, only not by its method: it is counted
    under that rule, so `/` answering 405 shows up as route="/".
    """
    rule = request.url_rule
    if rule is None and isinstance(request.routing_exception, MethodNotAllowed):
        rule = _rule_ignoring_method(app, request, request.routing_exception)
    return rule


class Routes:
    """The Route of each request to one app (or `unmatched`), each rule's Route built once."""

    def __init__(self, app: Flask):
        self._app = app
        # Rules are not hashable: keyed by id, and the rule is kept beside its
        # Route so that id cannot be reused while the entry exists.
        self._by_rule: dict[int, tuple[Rule, Route]] = {}

    def of(self, request: Request | None) -> Route:
        """Return the Route of `request` (None: Flask never saw it), or `unmatched`."""
        if request is None:
            return UNMATCHED_ROUTE
        rule = request.url_rule
        if rule is None:
            rule = rule_of(self._app, request)  # 404, or a 405 by its path
            if rule is None:
                return UNMATCHED_ROUTE
        cached = self._by_rule.get(id(rule))
        if cached is None:
            cached = self._by_rule[id(rule)] = (rule, route_of(rule))
        return cached[1]


def route_of(rule: Rule) -> Route:
    return Route(rule.rule, _graphite_safe(rule.endpoint))


def _rule_ignoring_method(app: Flask, request: Request, error: MethodNotAllowed):
    adapter = app.url_map.bind_to_environ(request.environ)
    for method in error.valid_methods or ():
        try:
            rule, _ = adapter.match(method=method, return_rule=True)
        except HTTPException:  # also a redirect to the slashed rule
            continue
        return rule
    return None


def _graphite_safe(endpoint: str) -> str:
    # A dot is a path separator in Graphite: blueprint endpoints (`bp.view`)
    # must stay one node of the StatsD name.
    return endpoint.replace(".", "_")

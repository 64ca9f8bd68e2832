"""The two pieces of a Grafana dashboard grafana-foundation-sdk has no builder for, in the style of
its builders: a Graphite query, and an annotation whose events a datasource query finds.

GraphiteQuery. A Graphite query (panel target) for grafana-foundation-sdk.

The SDK generates query builders from the schemas of the datasources that ship one
(Prometheus, Loki, Elasticsearch, ...); Graphite has none, so the SDK has no Graphite
query. This is the small part the lab needs: the target Grafana's Graphite datasource
stores, as a `Dataquery` the SDK's panels accept and its JSONEncoder serialises.

    GraphiteQuery().target("stats.gauges.lab.app.http.in_flight").datasource(GRAPHITE)

AnnotationQuery. A dashboard annotation whose events a datasource query finds, for grafana-foundation-sdk.

The SDK's AnnotationQuery has a `target` only for Grafana's own annotation store (tags, limit)
and a bare `expr`; Grafana runs a datasource's annotation as the query in `target`, and reads
the datasource's own fields beside it (Prometheus: titleFormat, tagKeys, textFormat). This is
that piece, built in the style of the SDK's builders:

    AnnotationQuery("Faults", PROMETHEUS, "red").query(prometheus.Dataquery().expr(...))
        .fields(titleFormat="{{route}}", tagKeys="route")
"""

import typing
from dataclasses import dataclass

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard
from grafana_foundation_sdk.models.common import DataSourceRef


@dataclass
class GraphiteDataquery(cogvariants.Dataquery):
    """One Graphite target, as Grafana's Graphite query editor saves it."""

    target: str = ""
    ref_id: str | None = None
    datasource: DataSourceRef | None = None
    # Show the raw target: the visual editor rewrites some functions it cannot parse.
    text_editor: bool = True
    # An annotation's query: Grafana's Graphite datasource makes each point that is neither
    # null nor 0 an event, titled with its series' name.
    from_annotations: bool = False

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"target": self.target, "textEditor": self.text_editor}
        if self.from_annotations:
            payload["fromAnnotations"] = True
        if self.ref_id is not None:
            payload["refId"] = self.ref_id
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload


class GraphiteQuery(cogbuilder.Builder[GraphiteDataquery]):
    """Build a Graphite target, in the style of the SDK's own query builders."""

    def __init__(self) -> None:
        self._internal = GraphiteDataquery()

    def build(self) -> GraphiteDataquery:
        return self._internal

    def target(self, target: str) -> typing.Self:
        """Set the Graphite target expression (render API `target=`)."""
        self._internal.target = target
        return self

    def ref_id(self, ref_id: str) -> typing.Self:
        """Set the query's id within its panel (A, B, ...)."""
        self._internal.ref_id = ref_id
        return self

    def datasource(self, datasource: DataSourceRef) -> typing.Self:
        """Set the datasource the target is sent to."""
        self._internal.datasource = datasource
        return self

    def for_annotations(self) -> typing.Self:
        """Make it an annotation's query: its points are events, not a series to draw."""
        self._internal.from_annotations = True
        return self


class QueriedAnnotation(dashboard.AnnotationQuery):
    """An annotation of the dashboard: its query, and the fields its datasource reads besides."""

    query: cogvariants.Dataquery | None = None
    fields: dict[str, object] = {}

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "target": self.query, **self.fields}


class AnnotationQuery(cogbuilder.Builder[dashboard.AnnotationQuery]):
    """Build an annotation that a datasource query feeds, on by default."""

    def __init__(self, name: str, datasource: DataSourceRef, color: str) -> None:
        self._internal = QueriedAnnotation(name=name, datasource=datasource, enable=True, icon_color=color)

    def build(self) -> QueriedAnnotation:
        return self._internal

    def query(self, query: cogbuilder.Builder[cogvariants.Dataquery]) -> typing.Self:
        """Set the query whose points are the events (Grafana's annotation `target`)."""
        self._internal.query = query.build()
        return self

    def fields(self, **fields: object) -> typing.Self:
        """Set the datasource's own annotation fields (Prometheus: titleFormat, tagKeys, textFormat)."""
        self._internal.fields = fields
        return self

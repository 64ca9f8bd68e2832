"""A dashboard annotation whose events a datasource query finds, for grafana-foundation-sdk.

The SDK's AnnotationQuery has a `target` only for Grafana's own annotation store (tags, limit)
and a bare `expr`; Grafana runs a datasource's annotation as the query in `target`, and reads
the datasource's own fields beside it (Prometheus: titleFormat, tagKeys, textFormat). This is
that piece, built in the style of the SDK's builders:

    AnnotationQuery("Faults", PROMETHEUS, "red").query(prometheus.Dataquery().expr(...))
        .fields(titleFormat="{{route}}", tagKeys="route")
"""

import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard
from grafana_foundation_sdk.models.common import DataSourceRef


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

"""The panel builders every dashboard uses: a time series or a stat on one datasource, its queries
lettered A, B, ..., its colors by thresholds."""

import typing

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models.common import DataSourceRef

from .sdk import GraphiteQuery

PANEL_HEIGHT, STAT_HEIGHT, ALERT_LIST_HEIGHT = 8, 4, 7


Steps = list[tuple[float, str]]  # (from this value up, its color), above a stat's base color


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    datasource: DataSourceRef,
    *queries: prometheus.Dataquery | GraphiteQuery,
) -> timeseries.Panel:
    """A time series panel on one datasource, its queries A, B, ..."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .unit(unit)
        .min(0)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.MULTI)
            .sort(common_models.SortOrder.DESCENDING)
        )
        .height(PANEL_HEIGHT)
    )
    return with_queries(panel, queries)


Panel = typing.TypeVar("Panel", timeseries.Panel, stat.Panel)


def with_queries(panel: Panel, queries: typing.Iterable[prometheus.Dataquery | GraphiteQuery]) -> Panel:
    """The panel with the queries as its targets A, B, ..."""
    for i, query in enumerate(queries):
        panel.with_target(query.ref_id(chr(ord("A") + i)))
    return panel


def thresholds(base: str, steps: Steps) -> dashboard.ThresholdsConfig:
    """The base color, and each step's color from its value up (rounded: 14.4 x 0.005 is 0.072)."""
    above = [dashboard_models.Threshold(round(value, 6), color) for value, color in sorted(steps)]
    return (
        dashboard.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(None, base), *above])
    )


def stat_panel(
    title: str,
    description: str,
    unit: str,
    datasource: DataSourceRef,
    steps: Steps,
    *queries: prometheus.Dataquery | GraphiteQuery,
    base: str = "green",
) -> stat.Panel:
    """The last value of each series, on its step's color; with no steps, no color: nothing to judge."""
    colored = common_models.BigValueColorMode.BACKGROUND if steps else common_models.BigValueColorMode.NONE
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .unit(unit)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .color_mode(colored)
        .thresholds(thresholds(base if steps else "text", steps))
        .height(STAT_HEIGHT)
    )
    return with_queries(panel, queries)


def percent(ratio: float) -> str:
    """A ratio as a title or a description says it: 0.005 -> "0.5 %"."""
    return f"{ratio * 100:g} %"

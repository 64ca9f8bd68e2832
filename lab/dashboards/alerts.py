"""What is and was wrong: the alert list (Alertmanager's alerts, by the provisioned datasource) and a
mark on every graph where an injected fault changed, from the fault gauges of both backends."""

import yaml
from grafana_foundation_sdk.builders import dashboard, prometheus
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models.common import DataSourceRef

from app.signals import (
    LAB_FAULT_ERROR_RATIO,
    LAB_FAULT_LATENCY,
    ROUTE,
    Metric,
)

from ..queries import PullQueries
from .panels import ALERT_LIST_HEIGHT
from .pipelines import (
    ALERTMANAGER,
    DATASOURCES,
    GRAPHITE,
    RATE,
    SCRAPE_UID,
    STATSD,
    graphite,
    label,
)
from .sdk import AnnotationQuery


def provisioned_name(uid: str) -> str:
    """The name of a provisioned datasource: what the alert list and Grafana's Alerting pages go by."""
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    (name,) = {datasource["name"] for datasource in provisioned if datasource["uid"] == uid}
    return name


def alert_list() -> dashboard.Panel:
    """The lab's alerts that fire or are pending, from the rules of the Prometheus that sends them on."""
    groups = f"/alerting/groups?alertmanager={provisioned_name(ALERTMANAGER.uid)}"
    return (
        dashboard.Panel()
        .type("alertlist")
        .title("Alerts firing and pending")
        .description(
            "The lab's alerts (prometheus/rules/alerts.yml) that fire or are pending, the most important "
            "first. Grafana lists alerting rules from a rules source, the Prometheus datasource here; that "
            "Prometheus sends what fires to Alertmanager, the datasource it names as its Alertmanager, which "
            "routes a page and a ticket to different receivers. Its alert groups and silences: the panel's "
            "link."
        )
        .options(
            {
                "viewMode": "list",
                "groupMode": "default",
                "groupBy": [],
                "maxItems": 20,
                "sortOrder": 3,  # importance: firing, then pending
                "dashboardAlerts": False,
                "alertName": "",
                "alertInstanceLabelFilter": "",
                "datasource": provisioned_name(SCRAPE_UID),  # its rules: listed once, whichever is read
                "showInactiveAlerts": False,
                "stateFilter": {
                    "firing": True,
                    "pending": True,
                    "recovering": True,
                    "noData": False,
                    "normal": False,
                    "error": True,
                },
            }
        )
        .links(
            [
                dashboard.DashboardLink("Alertmanager: alert groups and silences")
                .type(dashboard_models.DashboardLinkType.LINK)
                .url(groups)
            ]
        )
        .height(ALERT_LIST_HEIGHT)
    )


def scraped_fault_changes(
    fault: str, gauge: Metric, by_route: str, color: str, datasource: DataSourceRef
) -> AnnotationQuery:
    """Marks where the scraped fault gauge changed: the steps whose rate interval holds a change."""
    changed = f"changes(({by_route})[{RATE}:]) > 0"
    return (
        AnnotationQuery(f"{fault} changed (scrape)", datasource, color)
        .query(prometheus.Dataquery().datasource(datasource).expr(changed).ref_id("Anno"))
        .fields(
            titleFormat=f"{fault} changed on {label(ROUTE)} (scrape)",
            textFormat=f'{gauge.name}{{{ROUTE}="{label(ROUTE)}"}}, as Prometheus scraped it',
            tagKeys=ROUTE,
        )
    )


def statsd_fault_changes(fault: str, by_endpoint: str, color: str) -> AnnotationQuery:
    """Marks at the flushes where StatsD's fault gauge changed (changed() is 1 there, its 0s removed)."""
    changed = f"removeBelowValue(changed({by_endpoint}), 1)"
    titled = rf"aliasSub({changed}, '.*changed\((.+?)\).*', '{fault} changed on \1 (StatsD)')"
    return AnnotationQuery(f"{fault} changed (StatsD)", GRAPHITE, color).query(
        graphite(titled).for_annotations().ref_id("Anno")
    )


def fault_annotations(scraped: PullQueries, prometheus: DataSourceRef) -> list[AnnotationQuery]:
    """Each injected fault's changes, as both backends saw them: the scrape's gauges (read from
    `prometheus`), and StatsD's."""
    return [
        scraped_fault_changes(
            "Error fault", LAB_FAULT_ERROR_RATIO, scraped.fault_error_ratio(), "red", prometheus
        ),
        scraped_fault_changes(
            "Latency fault", LAB_FAULT_LATENCY, scraped.fault_latency(), "purple", prometheus
        ),
        statsd_fault_changes("Error fault", STATSD.fault_error_ratio(), "orange"),
        statsd_fault_changes("Latency fault", STATSD.fault_latency(), "blue"),
    ]

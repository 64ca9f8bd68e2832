"""`lab dashboards [--check]` (`make dashboards`): the four dashboards assembled, and their JSON written.

    lab dashboards           # write grafana/dashboards/*.json
    lab dashboards --check   # exit 1 if a committed file differs from what this writes

The JSON is what Grafana provisions (grafana/provisioning/dashboards/dashboards.yml);
a test checks that regenerating gives exactly the committed files. Here are the
variables, the rows and the dashboards; every panel comes from the modules beside
this one, each signal written once and reused (see lab/dashboards/__init__.py).
"""

import json
import re
import sys

from grafana_foundation_sdk.builders import dashboard, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models.common import DataSourceRef

from app.signals import (
    STATSD_PREFIX,
)

from ..settings import ROOT
from ..stack.ha import SCRAPE_DATASOURCES
from .alerts import alert_list, fault_annotations, provisioned_name
from .golden import (
    database_cause,
    database_symptom,
    errors,
    explained,
    latency,
    saturation,
    statsd_database_cause,
    statsd_database_symptom,
    statsd_errors,
    statsd_latency,
    statsd_saturation,
    statsd_traffic,
    traffic,
    worker_latency,
)
from .guide import guide
from .now import stats, statsd_stats, three_way_stats
from .pipelines import (
    EVERY_INSTANCE,
    GRAPHITE,
    OTLP,
    PROMETHEUS,
    PROVISIONED_PROMETHEUS,
    SCRAPE_UID,
    SCRAPE_VARIABLE,
    SCRAPED,
    STATSD,
    STATSD_SOURCE,
    PromPipeline,
)
from .resources import explained as resources_explained
from .resources import host_panels, process_cpu, process_memory, statsd_process_cpu, statsd_process_memory
from .sdk import AnnotationQuery
from .slo import slo_stats

OUT = ROOT / "grafana" / "dashboards"


TAG = "observability-lab"


# Panels side by side at most: more wrap, so the twelve stats of pull-vs-push make, under each
# pipeline's column, a block of 2 x 2.
PER_LINE = 6


def variable(name: str, datasource: DataSourceRef, query: str, all_value: str) -> dashboard.QueryVariable:
    """A multi-value query variable that starts on All (`all_value` then stands for every value)."""
    return (
        dashboard.QueryVariable(name)
        .label(name)
        .datasource(datasource)
        .query(query)
        .multi(True)
        .include_all(True)
        .all_value(all_value)
        .current(dashboard_models.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
    )


def datasource_variable() -> dashboard.DatasourceVariable:
    """Which Prometheus the scrape's panels read: the provisioned one, or another holding the same series
    (the HA overlay's replica b and long-term store, lab/stack/ha.py). First, as Grafana resolves it
    before the variables whose queries it answers."""
    default = provisioned_name(SCRAPE_UID)
    names = [default, *(name for name, _ in SCRAPE_DATASOURCES.values())]
    assert all(re.fullmatch(r"[\w -]+", name) for name in names), names  # nothing to escape in the regex
    return (
        dashboard.DatasourceVariable(SCRAPE_VARIABLE)
        .label("Prometheus")
        .description(
            "Where the scrape's series are read. With the HA overlay (compose.ha.yaml): either Prometheus "
            "replica, or the long-term store both remote-write to, which keeps one copy of each sample."
        )
        .type(PROMETHEUS.type_val)
        .regex("/^(" + "|".join(names) + ")$/")
        .current(dashboard_models.VariableOption(selected=True, text=default, value=SCRAPE_UID))
    )


def instance_variable() -> dashboard.QueryVariable:
    return variable("instance", PROMETHEUS, 'label_values(up{job="app"}, instance)', ".*")


def route_variable(p: PromPipeline) -> dashboard.QueryVariable:
    """The routes the pipeline has answered requests for."""
    return variable("route", p.datasource, f"label_values({p.names.requests}, {p.names.route})", ".*")


def endpoint_variable() -> dashboard.QueryVariable:
    return variable("endpoint", GRAPHITE, STATSD.endpoints(), "*")


def prefix_variable() -> dashboard.TextBoxVariable:
    """The StatsD prefix, a text box: set it to the app's STATSD_PREFIX (in the UI, or ?var-prefix=)."""
    return (
        dashboard.TextBoxVariable("prefix")
        .label("StatsD prefix")
        .description("The app's STATSD_PREFIX: every push series starts with it.")
        .default_value(STATSD_PREFIX)
        .current(dashboard_models.VariableOption(selected=True, text=STATSD_PREFIX, value=STATSD_PREFIX))
    )


Rows = list[tuple[str, list[cogbuilder.Builder[dashboard_models.Panel]]]]  # (row title, its panels)
SYMPTOMS_AND_CAUSES = "Symptoms and causes"
NOW, SLO_ROW, ALERTS = "Now", "SLOs: error budget and burn rate", "Alerts"


def build_dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[cogbuilder.Builder[dashboard_models.VariableModel]],
    rows: Rows,
    annotations: list[AnnotationQuery],
) -> dashboard_models.Dashboard:
    """A dashboard of rows, each row's panels side by side in equal widths (at most PER_LINE to a line);
    panel ids in order."""
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)  # the same moment in every panel
        .time("now-15m", "now")
        .refresh("10s")
        .timezone("browser")
        .variables(variables)
        .link(
            dashboard.DashboardLink("Lab dashboards")
            .type(dashboard_models.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
        )
        .annotations(annotations)
    )
    for row_title, panels in rows:
        board.with_row(dashboard.Row(row_title))  # the SDK lays panels out left to right below it
        for panel in panels:
            board.with_panel(panel.span(24 // min(len(panels), PER_LINE)))
    built = board.build()
    for i, panel in enumerate(built.panels, start=1):
        panel.id_val = i
    return built


def glance_rows(now: list[stat.Panel], slos: bool) -> Rows:
    """What is wrong now: the signals, the SLOs (where the dashboard reads the scrape), the alerts."""
    return [(NOW, now), *([(SLO_ROW, slo_stats())] if slos else []), (ALERTS, [alert_list()])]


HOST_ROW = "Saturation: the host"


def golden_signal_rows(p: PromPipeline, *beside_latency: timeseries.Panel, host: bool = False) -> Rows:
    """One PromQL pipeline's dashboard: a row per signal (saturation with each process's CPU and memory,
    and with `host` the host's, pulled), then the database symptom next to its cause."""
    return [
        ("Latency", [latency(p), *beside_latency]),
        ("Traffic", [traffic(p)]),
        ("Errors", [errors(p)]),
        ("Saturation", [saturation(p), process_cpu(p), process_memory(p)]),
        *([(HOST_ROW, host_panels(pushed=False))] if host else []),
        (SYMPTOMS_AND_CAUSES, [database_symptom(p), database_cause(p)]),
    ]


def three_way_rows() -> Rows:
    """Each signal's scrape, OTLP and StatsD views side by side, each saying how the three differ."""
    signals = (
        ("latency", latency, statsd_latency),
        ("traffic", traffic, statsd_traffic),
        ("errors", errors, statsd_errors),
        ("saturation", saturation, statsd_saturation),
    )
    causes = (
        database_symptom(SCRAPED),
        database_cause(SCRAPED),
        database_symptom(OTLP),
        database_cause(OTLP),
        statsd_database_symptom(),
        statsd_database_cause(),
    )
    return [
        (
            signal.capitalize(),
            [explained(panel, signal) for panel in (promql(SCRAPED), promql(OTLP), statsd())],
        )
        for signal, promql, statsd in signals
    ] + [
        (
            "Saturation: CPU per process",
            [resources_explained(panel, "processes") for panel in (process_cpu(SCRAPED), process_cpu(OTLP))]
            + [resources_explained(statsd_process_cpu(), "processes")],
        ),
        (
            "Saturation: memory per process",
            [
                resources_explained(panel, "processes")
                for panel in (process_memory(SCRAPED), process_memory(OTLP))
            ]
            + [resources_explained(statsd_process_memory(), "processes")],
        ),
        (HOST_ROW, [resources_explained(panel, "host") for panel in host_panels()]),
        (SYMPTOMS_AND_CAUSES, [explained(panel, "causes") for panel in causes]),
    ]


# Said under every dashboard's title: what its top rows and its marks are.
AT_A_GLANCE = (
    "It opens on what is wrong now (each signal's stat, colored where an alert fires; the SLOs' error "
    "budget and burn rate where it reads the scrape; the alerts), and marks each change of an injected "
    "fault (`lab faults`) as both backends saw it: the scrape's fault gauges and StatsD's."
)
GUIDE_ROW = "The golden signals, three ways"


def dashboards() -> dict[str, dashboard_models.Dashboard]:
    """File name -> dashboard."""
    return {
        "golden-signals-prometheus.json": build_dashboard(
            "golden-signals-prometheus",
            "Golden signals: pull (Prometheus)",
            "The Four Golden Signals of the app as Prometheus scrapes them, per route and instance. "
            f"{SCRAPED.source} {AT_A_GLANCE}",
            [datasource_variable(), instance_variable(), route_variable(SCRAPED), prefix_variable()],
            glance_rows(stats(SCRAPED), slos=True) + golden_signal_rows(SCRAPED, worker_latency(), host=True),
            fault_annotations(SCRAPED.queries, PROMETHEUS),
        ),
        "golden-signals-otlp.json": build_dashboard(
            "golden-signals-otlp",
            "Golden signals: OTLP push (OpenTelemetry)",
            "The Four Golden Signals of the app as its OpenTelemetry SDK pushes them over OTLP, per route. "
            f"{OTLP.source} No instance variable: the instances are workers, with random ids that every "
            f"recycle replaces. {AT_A_GLANCE}",
            [route_variable(OTLP), prefix_variable()],
            glance_rows(stats(OTLP), slos=False) + golden_signal_rows(OTLP),
            fault_annotations(EVERY_INSTANCE, PROVISIONED_PROMETHEUS),
        ),
        "golden-signals-graphite.json": build_dashboard(
            "golden-signals-graphite",
            "Golden signals: push (StatsD / Graphite)",
            "The Four Golden Signals of the app as StatsD pushes them to Graphite, per endpoint. "
            f"{STATSD_SOURCE} {AT_A_GLANCE}",
            [prefix_variable(), endpoint_variable()],
            glance_rows(statsd_stats(), slos=False)
            + [
                ("Latency", [statsd_latency()]),
                ("Traffic", [statsd_traffic()]),
                ("Errors", [statsd_errors()]),
                ("Saturation", [statsd_saturation(), statsd_process_cpu(), statsd_process_memory()]),
                (HOST_ROW, host_panels(pulled=False)),
                (SYMPTOMS_AND_CAUSES, [statsd_database_symptom(), statsd_database_cause()]),
            ],
            fault_annotations(EVERY_INSTANCE, PROVISIONED_PROMETHEUS),
        ),
        "pull-vs-push.json": build_dashboard(
            "pull-vs-push",
            "Pull vs push: scrape, OTLP, StatsD",
            "Each golden signal of the same requests three ways: scraped by Prometheus (left), pushed over "
            f"OTLP (middle), pushed through StatsD to Graphite (right). {SCRAPED.source} {OTLP.source} "
            f"{STATSD_SOURCE} {AT_A_GLANCE}",
            [
                datasource_variable(),
                instance_variable(),
                route_variable(SCRAPED),
                prefix_variable(),
                endpoint_variable(),
            ],
            glance_rows(three_way_stats(), slos=True) + [(GUIDE_ROW, [guide()])] + three_way_rows(),
            fault_annotations(SCRAPED.queries, PROMETHEUS),
        ),
    }


def render(board: dashboard_models.Dashboard) -> str:
    return json.dumps(board, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, board in dashboards().items():
        path, rendered = OUT / name, render(board)
        if check:
            if not path.exists() or path.read_text() != rendered:
                stale.append(name)
        else:
            path.write_text(rendered)
    if stale:
        print(f"out of date (run make dashboards): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0

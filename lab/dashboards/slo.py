"""The SLO row: each SLO's error budget left over its window and its burn rate over the page's two
windows, from the recording rules the alerts read."""

from grafana_foundation_sdk.builders import stat

from app.signals import (
    ROUTE,
)

from .. import rules
from ..rules import SLO_WINDOW, Slo
from .panels import percent, stat_panel
from .pipelines import PROMETHEUS, SCRAPED

SLOS = rules.slos()
AVAILABILITY = next(slo for slo in SLOS if slo.name == "availability")


BURN_UNIT = "suffix:×"


def slo_title(slo: Slo) -> str:
    return f"{slo.name.capitalize()} SLO {percent(1 - slo.budget)}"


def bad_requests(slo: Slo) -> str:
    """What the SLO counts against its budget, in words."""
    if slo.name == AVAILABILITY.name:
        return (
            "requests answered with a 5xx (the load generator's calls to /error/ among them: this budget "
            "burns even with no fault injected)"
        )
    return f"requests to {slo.matcher(ROUTE)} slower than {float(slo.matcher('le')) * 1000:g} ms"


def budget_left(slo: Slo) -> stat.Panel:
    ratio = slo.over(SLO_WINDOW)
    return stat_panel(
        f"{slo_title(slo)}: error budget left ({SLO_WINDOW})",
        f"The share of the error budget not yet spent over the SLO window: 1 - {ratio} / {slo.budget:g}, the "
        f"share of {bad_requests(slo)} over the last {SLO_WINDOW} over the share allowed. 100 % is nothing "
        f"spent; red below 0: the SLO is missed over the window. The window holds what Prometheus has: since "
        "the stack started, at most its retention (15 days unless set), so on a young stack the ratio so far "
        "stands for the whole window.",
        "percentunit",
        PROMETHEUS,
        [(0, "green")],
        SCRAPED.query(f"1 - {ratio} / {slo.budget:g}", slo.name),
        base="red",
    )


def burn_rate(slo: Slo, window: str) -> stat.Panel:
    return stat_panel(
        f"{slo_title(slo)}: burn rate ({window})",
        f"How fast the error budget burns: the share of {bad_requests(slo)} over the last {window}, over the "
        f"share allowed ({slo.budget:g}). At 1x the budget lasts the {SLO_WINDOW} window exactly: yellow "
        f"above; orange from {slo.ticket_burn:g}x, the slow-burn ticket's rate; red from {slo.page_burn:g}x, "
        f"the fast-burn page's, which pages once the {' and the '.join(slo.page_windows)} burn rates are "
        "both above it (prometheus/rules/alerts.yml).",
        BURN_UNIT,
        PROMETHEUS,
        [(1, "yellow"), (slo.ticket_burn, "orange"), (slo.page_burn, "red")],
        SCRAPED.query(f"{slo.over(window)} / {slo.budget:g}", slo.name),
    )


def slo_stats() -> list[stat.Panel]:
    """For each SLO, over the scrape: the budget left over its window, its burn rate on the page's windows."""
    return [
        panel
        for slo in SLOS
        for panel in (budget_left(slo), *(burn_rate(slo, window) for window in slo.page_windows))
    ]

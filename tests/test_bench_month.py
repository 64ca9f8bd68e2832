"""lab/bench/month.py: the rules as they were, which section 5 runs beside today's, and its table."""

import re

from lab.bench.month import BEFORE, BEFORE_WINDOWS, GroupCost, Month, before_rules, month_text
from lab.rules import SLO_WINDOW, rule, slos


def test_the_rules_as_they_were_read_every_window_from_the_counters_at_every_evaluation():
    groups = before_rules()["groups"]
    assert [group["name"] for group in groups] == [f"{BEFORE}/slo-{slo.name}" for slo in slos()]
    for slo, group in zip(slos(), groups, strict=True):
        assert "interval" not in group  # the global 5 s, as they ran
        assert [r["record"] for r in group["rules"]] == [f"{BEFORE}:{slo.over(w)}" for w in BEFORE_WINDOWS]
        thirty_days = group["rules"][BEFORE_WINDOWS.index(SLO_WINDOW)]["expr"]
        # today's 30-minute ratio, over 30 days: the raw counters, no recorded series
        assert thirty_days == rule("record", slo.over("30m"))["expr"].replace("[30m]", "[30d]")
        assert not re.search(r"\w+:\w+:\w+", thirty_days)


def cost(name: str, interval: float, ms: list[float], samples: int, missed: float = 0) -> GroupCost:
    return GroupCost(name, interval, [m / 1000 for m in ms], samples, missed, 0)


def test_the_table_has_a_row_per_group_its_median_and_share_of_its_interval():
    costs = {
        1: {
            "before/slo-availability": cost("before/slo-availability", 5, [20, 30, 25], 1000),
            "slo-availability-long": cost("slo-availability-long", 60, [], 10),
        },
        30: {
            "before/slo-availability": cost("before/slo-availability", 5, [400, 600, 500], 30000, missed=3),
            "slo-availability-long": cost("slo-availability-long", 60, [6], 600),
        },
    }
    month = Month(costs, 190, 1.5, 1000, 100, 400, 20, 5, 600)
    text = "\n".join(month_text(month))
    assert (
        "| `before/slo-availability` | 5 s | 25.00 ms | 500.00 ms (3 missed) | 10.000% | 30,000 | 6,000 |"
        in text
    )
    assert "| `slo-availability-long` | 60 s | no 2nd evaluation | 6.00 ms | 0.010% | 600 | 10 |" in text
    # 520 series, a sample each every 5 s, 1.5 bytes each: 13.5 MB a day
    assert "520 series" in text and "13.5 MB a day" in text

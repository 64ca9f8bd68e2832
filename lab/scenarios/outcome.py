"""What a scenario measured, as a table, as JSON, and as a report with its chart.

Every scenario compares three numbers in one unit: the truth (what the client
sent or measured), what the naive setup shows, and what the lab's shows;
`rows` may add another setup measured beside them. The report directory
holds report.md, result.json (the `--json` object) and chart.png.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

Points = list[tuple[float, float]]
COLORS = {"truth": "black", "naive": "tab:red", "lab": "tab:green", "other": "tab:blue"}


@dataclass(frozen=True)
class Row:
    role: str  # truth, naive, lab, or other (a second naive setup)
    setup: str  # what was run, or how the truth was counted
    value: float
    note: str = ""  # what else was seen (the spread of scrapes, files left...)


@dataclass(frozen=True)
class Line:
    role: str  # a key of COLORS
    label: str
    points: Points
    steps: bool = False  # a value holds until the next point (a counter read, a whisper slot)


@dataclass(frozen=True)
class Panel:
    ylabel: str
    lines: list[Line]


@dataclass(frozen=True)
class Chart:
    title: str
    xlabel: str
    panels: list[Panel]


@dataclass
class Outcome:
    scenario: str
    unit: str
    rows: list[Row]  # the truth, the naive setup and the lab's come first, in that order
    margin: str  # by how much the naive setup is off, as stated and as measured
    why: str
    reference: str
    fix: str  # the lab's files that hold the fix
    short: bool
    chart: Chart | None = None
    details: dict[str, float] = field(default_factory=dict)  # other figures measured, by name (for the tests)
    measured_at: str = field(default_factory=lambda: f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")

    def _value(self, role: str) -> float:
        return next(row.value for row in self.rows if row.role == role)

    @property
    def truth(self) -> float:
        return self._value("truth")

    @property
    def naive(self) -> float:
        return self._value("naive")

    @property
    def lab(self) -> float:
        return self._value("lab")

    def summary(self) -> dict:
        """The `--json` object."""
        return {
            "scenario": self.scenario,
            "unit": self.unit,
            "truth": self.truth,
            "naive": self.naive,
            "lab": self.lab,
        }

    def table(self) -> str:
        lines = [f"| | setup | {self.unit} |", "| --- | --- | --- |"]
        for row in self.rows:
            value = number(row.value) + (f" ({row.note})" if row.note else "")
            lines.append(f"| {row.role} | {row.setup} | {value} |")
        return "\n".join(lines)

    def body(self) -> str:
        """The table and what it means: the report's text, and what `lab scenario ID` prints."""
        return "\n\n".join(
            [
                self.table(),
                f"Margin: {self.margin}",
                f"Why: {self.why}",
                f"Reference: {self.reference}",
                f"The lab's fix: {self.fix}",
            ]
        )

    def text(self) -> str:
        """What `lab scenario ID` prints."""
        mode = ", short mode" if self.short else ""
        return f"{self.scenario} ({self.measured_at}{mode})\n\n{self.body()}"


def shifted(points: Points, start: float) -> Points:
    """Points timed from `start` (epoch seconds, as Graphite stamps them)."""
    return [(at - start, value) for at, value in points]


def number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def write(outcome: Outcome, out: Path) -> Path:
    """Write report.md, result.json and the chart under `out`; return the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(outcome.summary(), indent=2) + "\n")
    chart = ""
    if outcome.chart is not None:
        draw(outcome.chart, out / "chart.png")
        chart = "\n\n![chart](chart.png)"
    command = f"lab scenario {outcome.scenario}" + (" --short" if outcome.short else "")
    report = out / "report.md"
    report.write_text(
        f"# Pitfall `{outcome.scenario}`\n\n`{command}`, {outcome.measured_at}.\n\n"
        + outcome.body()
        + chart
        + "\n"
    )
    return report


def draw(chart: Chart, path: Path) -> None:
    """One row of panels sharing the x axis; the truth dashed, the setups in their colors."""
    import matplotlib  # slow to import: only when a report is written

    matplotlib.use("Agg")  # files only: no screen here, none needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        1, len(chart.panels), figsize=(5.5 * len(chart.panels), 4.2), dpi=100, squeeze=False
    )
    for panel, ax in zip(chart.panels, axes[0], strict=True):
        for line in panel.lines:
            xs = [x for x, _ in line.points]
            ax.plot(
                xs,
                [y for _, y in line.points],
                label=line.label,
                color=COLORS[line.role],
                linestyle="--" if line.role == "truth" else "-",
                marker="" if line.steps or len(xs) > 40 else ".",
                drawstyle="steps-post" if line.steps else "default",
                linewidth=1.5,
                zorder=3 if line.role == "truth" else 2,  # dashed on top: often the lab's line is on it
            )
        ax.set_xlabel(chart.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(chart.title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)

"""`lab scenario` as the CLI calls it: the list, or one scenario run, reported and printed."""

import json
import sys
from pathlib import Path

from . import SCENARIOS


def listing() -> int:
    """`lab scenario --list`: each scenario and the mistake it measures."""
    for name, entry in SCENARIOS.items():
        print(f"{name:<30}{entry.mistake}")
    return 0


def command(name: str, short: bool, as_json: bool, out: Path) -> int:
    """`lab scenario ID`: run it, write its report, print its table (or its numbers)."""
    # Imported here: the scenarios pull in requests and prometheus_client, their reports matplotlib.
    from .. import scenarios
    from ..stack.processes import NotReady
    from . import outcome
    from .running import ScenarioError

    try:
        measured = scenarios.run(name, short, out / "logs")
    except (NotReady, ScenarioError) as error:
        print(f"lab scenario {name}: {error}\n(logs in {out / 'logs'})", file=sys.stderr)
        return 1
    report = outcome.write(measured, out)
    print(json.dumps(measured.summary()) if as_json else f"{measured.text()}\n\nreport: {report}")
    return 0

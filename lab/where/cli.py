"""`lab where NAME [--json]` as the CLI calls it: each subject's chain, as lines or as JSON."""

import json
import sys
from dataclasses import asdict

from .chain import Chain, chain
from .subjects import UnknownName, resolve


def text(found: Chain) -> str:
    """A chain as lines a person reads, one link a block."""
    subject = found.subject
    lines = [f"{subject.name}  ({subject.constant}: {subject.pipeline}, {subject.kind})"]

    def block(title: str, items: list[str]) -> None:
        for i, item in enumerate(items or ["(none)"]):
            lines.append(f"  {title if i == 0 else '':<12} {item}")

    block("defined", [found.defined])
    block("emitted by", found.emitted_by)
    block("series", list(subject.prometheus or subject.graphite))
    block(
        "dashboards",
        [f"{p['at']}  {p['panel']!r}" + (f"  via {p['via']}" if p["via"] else "") for p in found.panels],
    )
    block(
        "rules",
        [
            f"{r['at']}  {r['kind']} {r['name']}" + (f"  via {r['via']}" if r["via"] else "")
            for r in found.rules
        ],
    )
    block("tests", found.tests)
    block("scenarios", [f"{s['id']} ({s['at']}): {s['mistake']}" for s in found.scenarios])
    return "\n".join(lines)


def command(name: str, as_json: bool) -> int:
    try:
        subjects = resolve(name)
    except UnknownName as error:
        print(f"lab where: {error}", file=sys.stderr)
        return 2
    chains = [chain(subject) for subject in subjects]
    if as_json:
        print(json.dumps({"name": name, "subjects": [asdict(found) for found in chains]}, indent=2))
    else:
        print("\n\n".join(text(found) for found in chains))
    return 0

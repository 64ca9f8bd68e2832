"""Create `.env` for compose from `.env.example`, with secrets of its own."""

import secrets
from pathlib import Path

# Left empty in .env.example on purpose: compose refuses to start without them.
SECRETS = ("GRAFANA_ADMIN_PASSWORD", "GRAPHITE_SECRET_KEY")
# Filled too, so that `lab faults` works on a stack made by `make up`; empty is
# allowed (fault control off).
GENERATED = (*SECRETS, "LAB_ADMIN_TOKEN")


def create(example: Path, target: Path) -> int:
    """Write `target` unless it exists; fill each empty secret and token with a random value."""
    if target.exists():
        print(f"{target.name} exists: kept as it is")
        return 0
    lines = []
    for line in example.read_text().splitlines():
        name = line.split("=", 1)[0]
        if name in GENERATED and line == f"{name}=":
            line = f"{name}={secrets.token_urlsafe(24)}"
        lines.append(line)
    target.write_text("\n".join(lines) + "\n")
    print(f"wrote {target.name}; the Grafana admin password is GRAFANA_ADMIN_PASSWORD in it")
    return 0


if __name__ == "__main__":  # `make up`: the standard library only, no venv needed
    root = Path(__file__).resolve().parent.parent.parent
    raise SystemExit(create(root / ".env.example", root / ".env"))

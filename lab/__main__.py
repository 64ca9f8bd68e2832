"""`python -m lab COMMAND`: the lab's tooling.

deps     install what the native stack needs (root on Debian/Ubuntu)
native   run the whole stack without Docker, in the foreground
dotenv   create .env from .env.example with fresh secrets (for compose)
"""

import argparse
import re
import sys
from pathlib import Path

from app.config import ConfigError

from . import bench, deps, dotenv, native, native_config
from .settings import ROOT, Ports


def interval(text: str) -> str:
    if not re.fullmatch(r"\d+(ms|s|m)", text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a Prometheus duration like 1s or 500ms")
    return text


def whole_seconds(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of seconds, 1 or more")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("deps", help="install the native stack's Debian and npm packages")
    run = commands.add_parser("native", help="run the stack without Docker")
    run.add_argument("--data-dir", type=Path, default=ROOT / ".lab" / "native", help="kept across restarts")
    run.add_argument(
        "--flush-interval",
        type=whole_seconds,
        default=native_config.statsd_flush_seconds(),
        help="StatsD flush and finest whisper retention, in seconds (default: graphite/statsd/udp.js)",
    )
    run.add_argument(
        "--scrape-interval", type=interval, help="Prometheus scrape interval (default: prometheus.yml)"
    )
    commands.add_parser("dotenv", help="create .env from .env.example with fresh secrets")
    commands.add_parser("bench", help="measure instrumentation and scrape cost")
    args = parser.parse_args(argv)

    if args.command == "deps":
        deps.install()
        return 0
    if args.command == "bench":
        return bench.run()
    if args.command == "dotenv":
        return dotenv.create(ROOT / ".env.example", ROOT / ".env")
    try:
        ports = Ports.from_env()
    except ConfigError as error:
        parser.error(str(error))
    return native.run(ports, args.data_dir, args.flush_interval, args.scrape_interval)


if __name__ == "__main__":
    sys.exit(main())

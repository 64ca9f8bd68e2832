"""`python -m lab COMMAND` (or `.venv/bin/lab COMMAND`): the lab's tooling.

deps        install what the native stack needs (root on Debian/Ubuntu)
native      run the whole stack without Docker, in the foreground
dotenv      create .env from .env.example with fresh secrets (for compose)
faults      show or change the app's injected faults
alerts      the notifications Alertmanager delivered to the lab's webhook sink
experiment  run the pull-vs-push scenario against a running stack and write a report
report      redraw an experiment's report from its result.json, with no backend running
bench       measure instrumentation and scrape cost
scenario    measure one pitfall of pull or push: the truth, a naive setup, the lab's (--list)
dashboards  write the Grafana dashboards' JSON from lab/dashboards (--check: only compare)
where       where a name of the contract is defined, shown, alerted on, tested and taught
"""

import argparse
import re
import sys
from pathlib import Path

from app.config import ConfigError

from .scenarios import SCENARIOS
from .settings import PHASES, ROOT, Ports, app_environment, lab_environment, statsd_flush_seconds
from .stack import deps, dotenv, native
from .stack.ha import HaPorts


def interval(text: str) -> str:
    if not re.fullmatch(r"\d+(ms|s|m)", text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a Prometheus duration like 1s or 500ms")
    return text


def whole_seconds(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of seconds, 1 or more")
    return int(text)


def number(low: float, high: float, *, low_open: bool = False):
    """An argparse type: a number in [low, high] (or (low, high]), named in the error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not (low < value if low_open else low <= value) or not value <= high:
            bound = "above" if low_open else "from"
            raise argparse.ArgumentTypeError(f"{text!r}: expected a number {bound} {low:g} to {high:g}")
        return value

    return parse


def add_stack_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--app", help="the app's URL (default: http://127.0.0.1:$APP_PORT)")
    command.add_argument("--prometheus", help="default: http://127.0.0.1:$PROMETHEUS_PORT")
    command.add_argument("--graphite", help="graphite-web's URL (default: http://127.0.0.1:$GRAPHITE_PORT)")
    command.add_argument(
        "--otel",
        help="the OTLP receiver's PromQL URL (default: Prometheus when it receives OTLP itself, as in "
        "compose; else the native stack's VictoriaMetrics, http://127.0.0.1:$OTLP_RECEIVER_PORT)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("deps", help="install the native stack's Debian and npm packages")
    run = commands.add_parser("native", help="run the stack without Docker")
    run.add_argument("--data-dir", type=Path, default=ROOT / ".lab" / "native", help="kept across restarts")
    run.add_argument(
        "--flush-interval",
        type=whole_seconds,
        default=statsd_flush_seconds(),
        help="StatsD flush and finest whisper retention, in seconds (default: graphite/statsd/udp.js)",
    )
    run.add_argument(
        "--scrape-interval", type=interval, help="Prometheus scrape interval (default: prometheus.yml)"
    )
    run.add_argument(
        "--no-loadgen", dest="loadgen", action="store_false", help="no load generator (exact counts)"
    )
    run.add_argument(
        "--ha",
        action="store_true",
        help="beyond one machine: 2 app instances, 2 Prometheus replicas, 3 Alertmanagers in a cluster, "
        "a long-term store (lab/stack/ha.py); a StatsD proxy before 2 nodes, a carbon-relay, 3 carbon "
        "caches and graphite-webs (lab/stack/ha_push.py)",
    )
    commands.add_parser("dotenv", help="create .env from .env.example with fresh secrets")
    faults = commands.add_parser("faults", help="show or change the app's injected faults")
    faults.add_argument("--error-rate", type=number(0, 1), help="share of requests answered 500 (0 to 1)")
    faults.add_argument("--latency-ms", type=number(0, 10_000), help="delay added to each request (ms)")
    faults.add_argument("--cpu-ms", type=number(0, 10_000), help="CPU time each request burns (ms)")
    faults.add_argument(
        "--leak-mb", type=number(0, 64), help="memory each request keeps, up to 512 MB a worker (MB)"
    )
    faults.add_argument("--route", help="only this URL rule (e.g. /database/); default: every route")
    faults.add_argument("--clear", action="store_true", help="remove every fault")
    add_stack_options(faults)
    alerts = commands.add_parser("alerts", help="the notifications Alertmanager delivered to the sink")
    alerts.add_argument("--minutes", type=number(0, 10**6, low_open=True), help="only the last MINUTES'")
    alerts.add_argument("--json", action="store_true", help="as the sink answers them")
    alerts.add_argument("--sink", help="the webhook sink's URL (default: http://127.0.0.1:$ALERT_SINK_PORT)")
    experiment = commands.add_parser("experiment", help="pull vs push under an error and a latency burst")
    experiment.add_argument(
        "--phase-seconds", type=number(0, 3600, low_open=True), default=60, help="each phase"
    )
    for phase in ("baseline", "errors", "latency", "recovery"):
        experiment.add_argument(
            f"--{phase}-seconds",
            type=number(0, 3600, low_open=True),
            help=f"the {phase} phase (default: --phase-seconds)",
        )
    experiment.add_argument("--rate", type=number(0, 500, low_open=True), default=20, help="requests/s to /")
    experiment.add_argument(
        "--error-rate", type=number(0, 1, low_open=True), default=0.3, help="in the error burst"
    )
    experiment.add_argument(
        "--latency-ms", type=number(20, 10_000), default=200, help="added in the latency burst (20 to 10000)"
    )
    experiment.add_argument("--out", type=Path, help="report directory (default: reports/experiment-<time>)")
    experiment.add_argument(
        "--node-failures",
        action="store_true",
        help="instead of the bursts: on the native HA stack (make native-ha), kill a node of each tier at "
        "once under --rate traffic for --phase-seconds; a table per pipeline (reports/node-failures-<time>)",
    )
    experiment.add_argument(
        "--data-dir",
        type=Path,
        default=ROOT / ".lab" / "native-ha",
        help="the native HA stack's data dir, for --node-failures (its runner's pids.json)",
    )
    experiment.add_argument("--alertmanager", help="default: http://127.0.0.1:$ALERTMANAGER_PORT")
    experiment.add_argument(
        "--alert-sink", help="the webhook sink's URL (default: http://127.0.0.1:$ALERT_SINK_PORT)"
    )
    add_stack_options(experiment)
    redraw = commands.add_parser("report", help="redraw an experiment's report from its result.json")
    redraw.add_argument("result", type=Path, help="the result.json `lab experiment` wrote")
    redraw.add_argument("--out", type=Path, help="report directory (default: the result.json's)")
    bench = commands.add_parser("bench", help="measure instrumentation and scrape cost")
    bench.add_argument(
        "--month", action="store_true", help="only section 5: the SLO rules on a month of history (~12 min)"
    )
    bench.add_argument(
        "--ha", action="store_true", help="only section 6: what the HA topology costs (~3 min)"
    )
    bench.add_argument(
        "--processes", action="store_true", help="only section 7: what the processes' figures cost (~10 s)"
    )
    scenario = commands.add_parser("scenario", help="a pitfall measured: truth, naive setup, the lab's")
    scenario.add_argument("id", nargs="?", choices=SCENARIOS, metavar="ID", help="see --list")
    scenario.add_argument("--list", action="store_true", help="list the scenarios and their mistakes")
    scenario.add_argument("--json", action="store_true", help="print only scenario, unit, truth, naive, lab")
    scenario.add_argument("--short", action="store_true", help="less traffic, fewer rounds (the tests' mode)")
    scenario.add_argument("--out", type=Path, help="report directory (default: reports/scenario-<ID>)")
    boards = commands.add_parser("dashboards", help="write the Grafana dashboards' JSON (grafana/dashboards)")
    boards.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    where = commands.add_parser("where", help="where a metric, StatsD name or golden signal is used")
    where.add_argument("name", help="e.g. http_requests_total, lab.app.http.requests, latency")
    where.add_argument("--json", action="store_true", help="the chain as JSON, for scripts")
    args = parser.parse_args(argv)
    return dispatch(parser, args)


def dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Call the command's package: each command is one (lab/stack, lab/experiment, ...)."""
    if args.command == "deps":
        deps.install()
        return 0
    if args.command == "bench":
        from .bench import run

        return run.main(month_only=args.month, ha_only=args.ha, processes_only=args.processes)
    if args.command == "dashboards":
        from .dashboards import build  # the SDK is slow to import: only this command needs it

        return build.main(["--check"] if args.check else [])
    if args.command == "where":
        from .where import cli

        return cli.command(args.name, args.json)
    if args.command == "dotenv":
        return dotenv.create(ROOT / ".env.example", ROOT / ".env")
    if args.command == "report":
        from .experiment import cli  # matplotlib is slow to import: only the commands that draw import it

        return cli.redraw(args.result, args.out or args.result.parent)
    if args.command == "scenario":
        from .scenarios import cli

        if args.list:
            return cli.listing()
        if args.id is None:
            parser.error("give a scenario ID, or --list to see them")
        return cli.command(
            args.id, args.short, args.json, args.out or ROOT / "reports" / f"scenario-{args.id}"
        )
    try:
        ports = Ports.from_env()
    except ConfigError as error:
        parser.error(str(error))
    if args.command == "native":
        ha_ports = HaPorts.from_env() if args.ha else None
        return native.run(
            ports, args.data_dir, args.flush_interval, args.scrape_interval, args.loadgen, ha_ports
        )
    if args.command == "alerts":
        from . import alerts

        return alerts.command(args.sink or f"http://127.0.0.1:{ports.alert_sink}", args.minutes, args.json)
    token = lab_environment().get("LAB_ADMIN_TOKEN", "")
    app = args.app or f"http://127.0.0.1:{ports.app}"
    if args.command == "faults":
        from . import fault_control

        settings = {name: getattr(args, name) for name in fault_control.SETTINGS}
        return fault_control.command(app, token, settings, args.route, args.clear)
    if args.node_failures:
        from app import config as app_config

        from .experiment import failures

        settings = app_config.from_env(app_environment())
        return failures.command(args.data_dir, args.phase_seconds, args.rate, args.out, settings)
    from .experiment import cli

    urls = {
        "app": app,
        "prometheus": args.prometheus or f"http://127.0.0.1:{ports.prometheus}",
        "graphite": args.graphite or f"http://127.0.0.1:{ports.graphite}",
        "otel": args.otel,
        "alertmanager": args.alertmanager or f"http://127.0.0.1:{ports.alertmanager}",
        "alert_sink": args.alert_sink or f"http://127.0.0.1:{ports.alert_sink}",
    }
    options = (args.baseline_seconds, args.errors_seconds, args.latency_seconds, args.recovery_seconds)
    phases = dict(zip(PHASES, options, strict=True))  # each phase's own --NAME-seconds, in order
    plan = cli.plan(args.phase_seconds, phases, args.rate, args.error_rate, args.latency_ms)
    native_receiver = f"http://127.0.0.1:{ports.otlp_receiver}"
    return cli.experiment(plan, urls, app_environment(), token, native_receiver, args.out)


if __name__ == "__main__":
    sys.exit(main())

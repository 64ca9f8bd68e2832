"""The chain of one subject of the contract, each link found where it is, never listed by hand:
where it is defined, which recorder emits it, which dashboards' panels show it, which recording rules
and alerts read it (following rules that read other rules), which tests prove it and which scenarios
teach about it.

Panels and rules are read as they are shipped (lab/contract.py's readers, lab/rules.py). Tests and
scenarios are read as code (ast): a function uses a subject when it names its constant or one of its
series, or calls a query of lab/queries.py that reads it on a pipeline's query set (`pull`, `otel`,
`push`) - the way the exactness tests ask, which names no series at all.
"""

import ast
import functools
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from app import signals

from .. import contract
from ..queries import OtelQueries, PullQueries, PushQueries
from ..rules import RULE_FILES, rules
from ..scenarios import SCENARIOS
from ..settings import ROOT
from .subjects import OTLP, PULL, STATSD, Subject

SIGNALS_FILE = ROOT / "app" / "signals.py"
KINDS = ("record", "alert")  # the rules' kinds, recording rules first: an alert reads what they record
RECORDERS = sorted(path for path in (ROOT / "app").glob("*.py") if path.name != "signals.py")
TESTS = sorted((ROOT / "tests").rglob("test_*.py"))
SCENARIO_MODULES = {entry.module: name for name, entry in SCENARIOS.items()}
# Sample arguments for calling a query method to see what it reads.
SAMPLES = {"q": 0.95, "seconds": 60, "histogram": signals.HTTP_REQUEST_DURATION, "percent": 95}


@dataclass
class Chain:
    subject: Subject
    defined: str = ""  # file:line
    emitted_by: list[str] = field(default_factory=list)  # file:line of each recorder's use
    panels: list[dict] = field(default_factory=list)  # {"at", "dashboard", "panel", "via"}
    rules: list[dict] = field(default_factory=list)  # {"at", "kind", "name", "via"}
    tests: list[str] = field(default_factory=list)  # file:line test_name
    scenarios: list[dict] = field(default_factory=list)  # {"id", "mistake", "at"}


def relative(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


@functools.cache
def lines_of(path: Path) -> tuple[str, ...]:
    """A file's lines, read once per run: the chains of a golden signal look in the same files."""
    return tuple(path.read_text().splitlines())


def line_of(path: Path, pattern: str, missing: int | None = 1) -> int | None:
    """The first line of `path` that `pattern` (a regex) matches (`missing` if none does)."""
    for number, text in enumerate(lines_of(path), 1):
        if re.search(pattern, text):
            return number
    return missing


def defined(subject: Subject) -> str:
    return relative(SIGNALS_FILE, line_of(SIGNALS_FILE, rf"^{subject.constant} = "))


def emitted_by(subject: Subject) -> list[str]:
    """Where each of the app's modules uses the constant outside its imports."""
    found = []
    for path in RECORDERS:
        tree = ast.parse(path.read_text())
        uses = sorted(
            node.lineno
            for node in ast.walk(tree)
            if (isinstance(node, ast.Name) and node.id == subject.constant)
            or (isinstance(node, ast.Attribute) and node.attr == subject.constant)
        )
        if uses:
            found.append(relative(path, uses[0]))
    return found


def reading_rules(series: set[str]) -> list[dict]:
    """Every rule that reads one of `series`, or a series a rule before it records from them."""
    known = {name: None for name in series}  # name -> the recorded series it came through (None: itself)
    found: dict[str, dict] = {}
    every = [
        (kind, rule[kind], contract.promql_series(rule["expr"])) for kind in KINDS for rule in rules(kind)
    ]
    changed = True
    while changed:
        changed = False
        for kind, name, reads in every:
            read = reads & set(known)
            if read and name not in found:
                source = sorted(read)[0]
                found[name] = {"kind": kind, "name": name, "via": known[source]}
                if kind == "record":
                    known[name] = known[source] or name
                changed = True
    for item in found.values():
        item["at"] = rule_line(item["kind"], item["name"])
    return sorted(found.values(), key=lambda item: by_place(item["at"]))


def by_place(at: str) -> tuple[str, int]:
    """file:line, sorted by file, then by line number."""
    path, _, line = at.rpartition(":")
    return path, int(line) if line.isdigit() else 0


def rule_line(kind: str, name: str) -> str:
    for path in RULE_FILES:
        line = line_of(path, rf"^\s*- {kind}: {re.escape(name)}\s*$", missing=None)
        if line is not None:
            return relative(path, line)
    return "?"


def panels(subject: Subject, recorded: dict[str, str | None]) -> list[dict]:
    """Every dashboard panel (and variable) whose queries read the subject, or a rule recorded from it."""
    found: dict[tuple[str, str], dict] = {}
    for query in contract.dashboard_queries():
        via = None
        if query.kind == "prometheus":
            read = contract.query_series(query)
            direct = read & set(subject.prometheus)
            through = sorted(read & set(recorded))
            if not direct and not through:
                continue
            if not direct:
                via = through[0]
        elif not any(
            contract.graphite_matches(path, series, find=query.find)
            for path in contract.graphite_paths(query.text)
            for series in subject.graphite
        ):
            continue
        title = query.panel if query.panel is not None else query.where.split(" ", 1)[1]
        key = (query.dashboard.name, title)
        if key not in found or (found[key]["via"] and not via):
            variable = title.removeprefix("$") if query.panel is None else None
            key_text = f'"name": {json.dumps(variable)}' if variable else f'"title": {json.dumps(title)}'
            at = line_of(query.dashboard, re.escape(key_text))
            found[key] = {
                "at": relative(query.dashboard, at),
                "dashboard": key[0],
                "panel": title,
                "via": via,
            }
    return list(found.values())


def query_methods(subject: Subject) -> set[tuple[str, str]]:
    """(pipeline, method) of each query of lab/queries.py whose query reads the subject."""
    classes = {PULL: PullQueries(), OTLP: OtelQueries(), STATSD: PushQueries(prefix=signals.STATSD_PREFIX)}
    found = set()
    for pipeline, queries in classes.items():
        for name, method in inspect.getmembers(queries, inspect.ismethod):
            if name.startswith("_") or name in ("select", "rate", "current", "count"):
                continue
            parameters = inspect.signature(method).parameters.values()
            required = [p for p in parameters if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
            if any(p.name not in SAMPLES for p in required):
                continue
            text = method(*(SAMPLES[p.name] for p in required))
            if pipeline == STATSD:
                reads = any(
                    contract.graphite_matches(path, series)
                    for path in contract.graphite_paths(text)
                    for series in subject.graphite
                )
            else:
                reads = bool(contract.promql_series(text) & set(subject.prometheus))
            if reads:
                found.add((pipeline, name))
    return found


def _pipeline_of(receiver: str) -> str | None:
    """Which query set a call's receiver is, by its name (stack.pull, OTEL, push, queries.otel...)."""
    text = receiver.lower()
    for word, pipeline in (("otel", OTLP), ("push", STATSD), ("pull", PULL)):
        if word in text:
            return pipeline
    return None


def _uses(function: ast.AST, subject: Subject, methods: set[tuple[str, str]]) -> bool:
    words = set(subject.words)
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and node.id == subject.constant:
            return True
        if isinstance(node, ast.Attribute) and node.attr == subject.constant:
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", node.value) for word in words - {""}):
                return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            pipeline = _pipeline_of(ast.unparse(node.func.value))
            if (pipeline, node.func.attr) in methods:
                return True
    return False


def _functions(tree: ast.Module) -> dict[str, ast.AST]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def _using(
    path: Path, subject: Subject, methods: set[tuple[str, str]]
) -> tuple[dict[str, ast.AST], set[str]]:
    """A module's functions, and those that use the subject themselves or through a function of the
    module they call (one level: the test's helpers)."""
    functions = _functions(ast.parse(path.read_text()))
    direct = {name for name, function in functions.items() if _uses(function, subject, methods)}
    using = set(direct)
    for name, function in functions.items():
        called = {
            node.func.id
            for node in ast.walk(function)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        if called & direct:
            using.add(name)
    return functions, using


def tests(subject: Subject, methods: set[tuple[str, str]]) -> list[str]:
    found = []
    for path in TESTS:
        functions, using = _using(path, subject, methods)
        tested = sorted((functions[name].lineno, name) for name in using if name.startswith("test_"))
        found += [f"{relative(path, line)} {name}" for line, name in tested]
    return found


def scenarios(subject: Subject, methods: set[tuple[str, str]]) -> list[dict]:
    found = []
    for module, name in SCENARIO_MODULES.items():
        path = ROOT / "lab" / "scenarios" / f"{module}.py"
        functions, using = _using(path, subject, methods)
        if using:
            first = min(functions[function].lineno for function in using)
            found.append({"id": name, "mistake": SCENARIOS[name].mistake, "at": relative(path, first)})
    return found


def chain(subject: Subject) -> Chain:
    """Every link of the subject's chain."""
    found = reading_rules(set(subject.prometheus))
    recorded = {item["name"]: item["via"] for item in found if item["kind"] == "record"}
    methods = query_methods(subject)
    return Chain(
        subject,
        defined=defined(subject),
        emitted_by=emitted_by(subject),
        panels=panels(subject, recorded),
        rules=found,
        tests=tests(subject, methods),
        scenarios=scenarios(subject, methods),
    )

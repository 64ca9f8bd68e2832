"""Install what the native stack needs, where this machine allows it.

Idempotent: only what is missing is installed. As root on Debian or Ubuntu it
uses apt-get and npm; anywhere else it names what to install and stops.

Two programs are newer than bookworm has: promtool 3 (bookworm's 2.42 does not
know prometheus.yml's `otlp:` section) and VictoriaMetrics (Debian's Prometheus
builds have no OTLP receiver, so the native stack runs VictoriaMetrics in its
place). Their Debian packages are downloaded from trixie and sid with apt-get
under a private configuration and unpacked into the lab's own directory:
nothing is installed system-wide and the system's apt sources stay as they are,
so this also works as an ordinary user.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..settings import ROOT

# command (or check) -> the Debian package that provides it
DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "carbon-cache": "graphite-carbon",
    "graphite-web": "graphite-web",
    "node": "nodejs",
    "npm": "npm",
    "wrk": "wrk",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "prometheus-node-exporter": "prometheus-node-exporter",  # the host, pulled
    "collectd": "collectd-core",  # the host, pushed (collectd-core: the daemon, no service started)
}
SYSTEM_PYTHON = "/usr/bin/python3"  # graphite-web and carbon are Debian's, for Debian's Python
NODE_MODULES = ROOT / "lab" / "node_modules"
STATSD_DAEMON_JS = NODE_MODULES / "statsd" / "stats.js"
# The HA topology's StatsD cluster proxy needs hashring, which statsd lists as optional (with
# modern-syslog, which needs a compiler): lab/package.json names it as a dependency of ours.
STATSD_PROXY_JS = NODE_MODULES / "statsd" / "proxy.js"
HASHRING = NODE_MODULES / "hashring" / "package.json"

NEWER_DEBIAN_DIR = ROOT / ".lab" / "debian"
UNPACKED = NEWER_DEBIAN_DIR / "root"  # the packages' files, as dpkg-deb -x lays them out
VICTORIA_METRICS = UNPACKED / "usr" / "bin" / "victoria-metrics"
PROMTOOL_3 = UNPACKED / "usr" / "bin" / "promtool"
# binary -> the package/suite that has it. Trixie's victoria-metrics declares
# libzstd1 >= 1.5.5, one more than bookworm's, so apt would not install it
# here; the unpacked binary runs all the same.
NEWER_DEBIAN_PACKAGES = {VICTORIA_METRICS: "victoria-metrics/trixie", PROMTOOL_3: "promtool/sid"}
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
NEWER_DEBIAN_SOURCES = "".join(
    f"deb [signed-by={DEBIAN_KEYRING}] http://deb.debian.org/debian {suite} main\n"
    for suite in ("trixie", "sid")
)


def _present(command: str) -> bool:
    if command == "graphite-web":
        check = [SYSTEM_PYTHON, "-c", "import graphite.settings"]
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "graphite.settings"}
        return (
            os.path.exists(SYSTEM_PYTHON)
            and subprocess.run(check, env=env, capture_output=True).returncode == 0
        )
    return shutil.which(command) is not None


def missing_packages() -> list[str]:
    return sorted({package for command, package in DEBIAN_PACKAGES.items() if not _present(command)})


def install() -> None:
    """Install the missing Debian packages and the StatsD daemon; exit with a message if we cannot."""
    packages = missing_packages()
    if packages:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            sys.exit(
                "The native stack needs these Debian/Ubuntu packages: " + " ".join(packages) + "\n"
                "Install them (as root: apt-get install " + " ".join(packages) + "),\n"
                "or run the lab with Docker instead: docker compose up"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env=env
        )
    if not (STATSD_DAEMON_JS.exists() and HASHRING.exists()):
        subprocess.run(
            [
                "npm",
                "ci",
                "--no-audit",
                "--no-fund",
                "--omit=optional",
                "--prefix",
                str(NODE_MODULES.parent),
            ],
            check=True,
        )
    fetch_newer_debian_packages()
    print(
        "native dependencies present: prometheus, alertmanager, node_exporter, collectd, graphite-carbon, "
        "graphite-web, statsd, wrk, victoria-metrics and promtool 3 (in .lab/debian)"
    )


def private_apt_options(state: Path) -> list[str]:
    """apt-get options that read NEWER_DEBIAN_SOURCES and keep every list, cache and lock under `state`."""
    options = {
        "Dir::Etc::SourceList": state / "sources.list",
        "Dir::Etc::SourceParts": "/dev/null",  # not the system's sources.list.d
        "Dir::State::Lists": state / "lists",
        "Dir::Cache": state / "cache",
        "Dir::State::Status": "/dev/null",  # nothing is installed: apt need not know what is
        "Debug::NoLocking": "1",  # the system's locks are root's, and guard nothing of ours
    }
    if os.geteuid() == 0:
        # As root apt downloads as the user _apt, who may not write into our directory;
        # it would fall back to root with a warning: say so up front.
        options["APT::Sandbox::User"] = "root"
    return [argument for name, value in options.items() for argument in ("-o", f"{name}={value}")]


def fetch_newer_debian_packages() -> None:
    """Download and unpack NEWER_DEBIAN_PACKAGES into UNPACKED, unless their binaries are there."""
    if all(binary.exists() for binary in NEWER_DEBIAN_PACKAGES):
        return
    packages = list(NEWER_DEBIAN_PACKAGES.values())
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None or not DEBIAN_KEYRING.exists():
        sys.exit(
            f"The native stack needs Debian's {', '.join(packages)}, fetched with apt-get and "
            f"dpkg-deb and checked with {DEBIAN_KEYRING} (Debian's debian-archive-keyring package).\n"
            "Without them, run the lab with Docker instead: docker compose up"
        )
    print(
        f"fetching {' and '.join(packages)} into {UNPACKED.relative_to(ROOT)} (unpacked, not installed):\n"
        "  bookworm's promtool cannot check prometheus.yml's otlp section, and its Prometheus has no "
        "OTLP receiver (the native stack runs VictoriaMetrics as one)",
        flush=True,
    )
    NEWER_DEBIAN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="apt-", dir=NEWER_DEBIAN_DIR) as work:
        state = Path(work)
        for directory in ("lists/partial", "cache/archives/partial"):
            (state / directory).mkdir(parents=True)
        (state / "sources.list").write_text(NEWER_DEBIAN_SOURCES)
        apt = ["apt-get", *private_apt_options(state)]
        _run_or_exit([*apt, "-qq", "update"], state, "read the package lists of deb.debian.org")
        _run_or_exit([*apt, "-qq", "download", *packages], state, f"download {', '.join(packages)}")
        for deb in sorted(state.glob("*.deb")):
            _run_or_exit(["dpkg-deb", "-x", str(deb), str(UNPACKED)], state, f"unpack {deb.name}")
    missing = [str(binary) for binary in NEWER_DEBIAN_PACKAGES if not binary.exists()]
    if missing:
        sys.exit(f"unpacked {', '.join(packages)}, but found no {', '.join(missing)}")


def _run_or_exit(argv: list[str], cwd: Path, doing: str) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip()
        sys.exit(f"could not {doing}: {argv[0]} exited with {result.returncode}\n{said}")

"""Install what the native stack needs, where this machine allows it.

Idempotent: only what is missing is installed. As root on Debian or Ubuntu it
uses apt-get and npm; anywhere else it names what to install and stops.
"""

import os
import shutil
import subprocess
import sys

from .settings import ROOT

# command (or check) -> the Debian package that provides it
DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "carbon-cache": "graphite-carbon",
    "graphite-web": "graphite-web",
    "node": "nodejs",
    "npm": "npm",
    "wrk": "wrk",
}
SYSTEM_PYTHON = "/usr/bin/python3"  # graphite-web and carbon are Debian's, for Debian's Python
STATSD_DAEMON_JS = ROOT / "lab" / "node_modules" / "statsd" / "stats.js"


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
    if not STATSD_DAEMON_JS.exists():
        subprocess.run(
            [
                "npm",
                "ci",
                "--no-audit",
                "--no-fund",
                "--omit=optional",
                "--prefix",
                str(STATSD_DAEMON_JS.parents[2]),
            ],
            check=True,
        )
    print("native dependencies present: prometheus, graphite-carbon, graphite-web, statsd, wrk")

"""`make native-deps` installs what is missing, or says what to install."""

import subprocess
from pathlib import Path

import pytest

from lab.stack import deps


def test_names_the_missing_packages_when_it_cannot_install(monkeypatch):
    monkeypatch.setattr(deps, "_present", lambda command: command not in ("carbon-cache", "promtool"))
    monkeypatch.setattr(deps.os, "geteuid", lambda: 1000)  # not root
    with pytest.raises(SystemExit) as stop:
        deps.install()
    message = str(stop.value.code)
    assert "graphite-carbon prometheus" in message
    assert "apt-get install graphite-carbon prometheus" in message
    assert "docker compose up" in message


def test_installs_nothing_when_everything_is_present(monkeypatch, capsys):
    monkeypatch.setattr(deps, "_present", lambda command: True)
    monkeypatch.setattr(deps.subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    monkeypatch.setattr(deps, "STATSD_DAEMON_JS", Path(deps.__file__))  # any existing file
    monkeypatch.setattr(deps, "HASHRING", Path(deps.__file__))
    monkeypatch.setattr(deps, "NEWER_DEBIAN_PACKAGES", {Path(deps.__file__): "anything/sid"})
    deps.install()
    assert "native dependencies present" in capsys.readouterr().out


@pytest.fixture
def newer_debian(monkeypatch, tmp_path):
    """fetch_newer_debian_packages into tmp_path, with apt-get and dpkg-deb recorded, not run."""
    unpacked = tmp_path / "root"
    monkeypatch.setattr(deps, "ROOT", tmp_path)
    monkeypatch.setattr(deps, "NEWER_DEBIAN_DIR", tmp_path)
    monkeypatch.setattr(deps, "UNPACKED", unpacked)
    binaries = {unpacked / "usr/bin/victoria-metrics": "victoria-metrics/trixie"}
    binaries[unpacked / "usr/bin/promtool"] = "promtool/sid"
    monkeypatch.setattr(deps, "NEWER_DEBIAN_PACKAGES", binaries)
    calls = []

    def run(argv, cwd, **options):
        calls.append((argv, cwd))
        if "download" in argv:  # apt-get download writes the .deb files into its working directory
            for package in argv[argv.index("download") + 1 :]:
                (cwd / f"{package.split('/')[0]}_1.0_amd64.deb").write_bytes(b"")
        if argv[:2] == ["dpkg-deb", "-x"]:  # unpacks the binary its package name says
            name = Path(argv[2]).name.split("_")[0]
            binary = next(path for path, package in binaries.items() if package.startswith(name + "/"))
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_text("")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(deps.subprocess, "run", run)
    return calls


def test_fetches_the_newer_packages_with_a_private_apt_configuration(newer_debian, capsys):
    deps.fetch_newer_debian_packages()
    update, download, *unpack = newer_debian
    work = update[1]
    # apt-get's lists, cache and sources live in a directory of its own under the lab's
    assert work.parent == deps.NEWER_DEBIAN_DIR and not work.exists()  # removed once unpacked
    options = dict(option.split("=", 1) for option in update[0][1:] if "=" in option)
    assert options["Dir::Etc::SourceList"] == str(work / "sources.list")
    assert options["Dir::Etc::SourceParts"] == "/dev/null"  # not the system's sources
    assert options["Dir::State::Lists"] == str(work / "lists")
    assert options["Dir::Cache"] == str(work / "cache")
    assert options["Dir::State::Status"] == "/dev/null"
    assert update[0][-1] == "update" and download[0][-3:] == [
        "download",
        "victoria-metrics/trixie",
        "promtool/sid",
    ]
    assert download[0][: len(update[0]) - 2] == update[0][:-2]  # the same private configuration
    # each .deb unpacked into the lab's directory, none installed
    assert sorted(argv[:2] + [argv[3]] for argv, _ in unpack) == [["dpkg-deb", "-x", str(deps.UNPACKED)]] * 2
    assert not any("install" in argv for argv, _ in newer_debian)
    assert all(binary.exists() for binary in deps.NEWER_DEBIAN_PACKAGES)
    said = capsys.readouterr().out
    assert "victoria-metrics/trixie and promtool/sid" in said and "not installed" in said


def test_the_private_sources_are_trixie_and_sid_signed_by_debian():
    lines = deps.NEWER_DEBIAN_SOURCES.splitlines()
    signed = f"deb [signed-by={deps.DEBIAN_KEYRING}] http://deb.debian.org/debian"
    assert lines == [f"{signed} trixie main", f"{signed} sid main"]


def test_fetches_nothing_when_the_binaries_are_there(newer_debian):
    for binary in deps.NEWER_DEBIAN_PACKAGES:
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text("")
    deps.fetch_newer_debian_packages()
    assert newer_debian == []


def test_a_failed_download_is_named_with_what_apt_said(newer_debian, monkeypatch):
    def run(argv, cwd, **options):
        failed = "download" in argv
        return subprocess.CompletedProcess(
            argv, 100 if failed else 0, "", "E: Unable to locate package" * failed
        )

    monkeypatch.setattr(deps.subprocess, "run", run)
    with pytest.raises(SystemExit) as stop:
        deps.fetch_newer_debian_packages()
    message = str(stop.value.code)
    assert "could not download victoria-metrics/trixie, promtool/sid" in message
    assert "apt-get exited with 100" in message and "Unable to locate package" in message


def test_says_what_it_needs_without_apt_get(newer_debian, monkeypatch):
    monkeypatch.setattr(deps.shutil, "which", lambda command: None)
    with pytest.raises(SystemExit) as stop:
        deps.fetch_newer_debian_packages()
    message = str(stop.value.code)
    assert "apt-get" in message and "dpkg-deb" in message and "docker compose up" in message
    assert newer_debian == []


@pytest.mark.processes
def test_this_machine_has_everything_the_suite_needs():
    assert deps.missing_packages() == []
    assert deps.STATSD_DAEMON_JS.exists() and deps.STATSD_PROXY_JS.exists() and deps.HASHRING.exists()
    assert deps.VICTORIA_METRICS.exists() and deps.PROMTOOL_3.exists()

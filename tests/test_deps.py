"""`make native-deps` installs what is missing, or says what to install."""

import pytest

from lab import deps


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
    monkeypatch.setattr(deps, "STATSD_DAEMON_JS", deps.ROOT / "lab" / "deps.py")  # any existing file
    deps.install()
    assert "native dependencies present" in capsys.readouterr().out


def test_this_machine_has_everything_the_suite_needs():
    assert deps.missing_packages() == []
    assert deps.STATSD_DAEMON_JS.exists()

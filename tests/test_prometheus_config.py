"""prometheus.yml as Prometheus 3 reads it: `promtool check config` of the 3.x line accepts it,
with the OTLP receiver's settings (bookworm's promtool 2 knows no `otlp:` section)."""

import subprocess

import pytest
import yaml

from lab.settings import PROMETHEUS_YML
from lab.stack.deps import PROMTOOL_3


def promtool_3(*args: str) -> subprocess.CompletedProcess:
    if not PROMTOOL_3.exists():
        pytest.fail(f"promtool 3 is missing: `make deps` fetches it into {PROMTOOL_3.parent}")
    return subprocess.run(
        [str(PROMTOOL_3), *args], cwd=PROMETHEUS_YML.parent, capture_output=True, text=True, timeout=120
    )


@pytest.mark.processes
def test_it_is_promtool_3():
    result = promtool_3("--version")
    assert result.stdout.startswith("promtool, version 3."), result.stdout + result.stderr


@pytest.mark.processes
def test_promtool_3_accepts_the_config():
    result = promtool_3("check", "config", "--syntax-only", PROMETHEUS_YML.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_config_sets_up_the_otlp_receiver():
    # what the check above has to accept: not a file without the section
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    assert config["otlp"]["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    # job and instance come from service.name and service.instance.id without promotion
    assert "promote_resource_attributes" not in config["otlp"]
    assert config["storage"]["tsdb"]["out_of_order_time_window"] == "30m"

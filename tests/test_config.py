"""Configuration from the environment: defaults, and errors that name the variable."""

import pytest

from app.config import DEFAULTS, ConfigError, from_env


def test_defaults_are_the_designs():
    settings = from_env({})
    assert settings == DEFAULTS
    assert (settings["APP_PORT"], settings["WORKER_PORT"], settings["STATSD_PORT"]) == (5000, 8000, 8125)
    assert (settings["STATSD_HOST"], settings["STATSD_PREFIX"], settings["LAB_METRICS"]) == (
        "graphite",
        "lab.app",
        "all",
    )
    assert (
        settings["GUNICORN_WORKERS"],
        settings["GUNICORN_THREADS"],
        settings["GUNICORN_MAX_REQUESTS"],
    ) == (4, 1, 0)


def test_values_are_converted_to_the_defaults_types():
    settings = from_env(
        {
            "APP_PORT": "6000",
            "DB_DELAY_MIN_SECONDS": "0",
            "DB_DELAY_MAX_SECONDS": "0.5",
            "STATSD_PREFIX": "shop",
        }
    )
    assert (settings["APP_PORT"], settings["DB_DELAY_MAX_SECONDS"], settings["STATSD_PREFIX"]) == (
        6000,
        0.5,
        "shop",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_PORT": "five"}, "APP_PORT='five': expected int"),
        ({"LAB_METRICS": "some"}, "LAB_METRICS='some': expected one of off, prometheus, statsd, all"),
        ({"GUNICORN_WORKERS": "0"}, "GUNICORN_WORKERS=0: must be above 0"),
        ({"GUNICORN_MAX_REQUESTS": "-1"}, "GUNICORN_MAX_REQUESTS='-1': must not be negative"),
        ({"DB_DELAY_MIN_SECONDS": "5"}, "DB_DELAY_MIN_SECONDS=5.0 is above DB_DELAY_MAX_SECONDS=3.0"),
    ],
)
def test_a_bad_value_is_named(env, message):
    with pytest.raises(ConfigError) as error:
        from_env(env)
    assert str(error.value) == message

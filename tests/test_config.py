"""Configuration from the environment: defaults, and errors that name the variable."""

import pytest

from app.config import DEFAULTS, ConfigError, from_env, otlp_endpoints, pipelines

PIPELINE_LIST = "expected all, off, or a comma-separated list of prometheus, statsd, otel (each once)"


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
        ({"LAB_METRICS": "some"}, "LAB_METRICS='some': " + PIPELINE_LIST),
        ({"LAB_METRICS": "otel,otel"}, "LAB_METRICS='otel,otel': " + PIPELINE_LIST),
        ({"LAB_METRICS": "all,otel"}, "LAB_METRICS='all,otel': " + PIPELINE_LIST),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "0"}, "OTEL_METRIC_EXPORT_INTERVAL=0: must be above 0"),
        ({"GUNICORN_WORKERS": "0"}, "GUNICORN_WORKERS=0: must be above 0"),
        ({"GUNICORN_MAX_REQUESTS": "-1"}, "GUNICORN_MAX_REQUESTS='-1': must not be negative"),
        ({"DB_DELAY_MIN_SECONDS": "5"}, "DB_DELAY_MIN_SECONDS=5.0 is above DB_DELAY_MAX_SECONDS=3.0"),
        (
            {"OTLP_EXTRA_METRICS_ENDPOINTS": "http://b:9090/v1,prometheus-2:9090"},
            "OTLP_EXTRA_METRICS_ENDPOINTS: 'prometheus-2:9090' is not an http:// or https:// URL",
        ),
        (
            {"OTLP_EXTRA_METRICS_ENDPOINTS": "http://b/v1,"},
            "OTLP_EXTRA_METRICS_ENDPOINTS: '' is not an http:// or https:// URL",
        ),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://"},
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://' is not an http:// or https:// URL",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://a/v1",
                "OTLP_EXTRA_METRICS_ENDPOINTS": "http://a/v1",
            },
            "OTLP_EXTRA_METRICS_ENDPOINTS='http://a/v1': names an endpoint twice (every point twice)",
        ),
    ],
)
def test_a_bad_value_is_named(env, message):
    with pytest.raises(ConfigError) as error:
        from_env(env)
    assert str(error.value) == message


def test_otlp_endpoints_are_opentelemetrys_then_the_extra_ones():
    one = from_env({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://a:9090/v1"})
    assert otlp_endpoints(one) == ["http://a:9090/v1"]
    two = from_env(
        {
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://a/v1",
            "OTLP_EXTRA_METRICS_ENDPOINTS": " http://b/v1 ",
        }
    )
    assert otlp_endpoints(two) == ["http://a/v1", "http://b/v1"]


@pytest.mark.parametrize(
    ("lab_metrics", "chosen"),
    [
        ("all", {"prometheus", "statsd", "otel"}),
        ("off", set()),
        ("prometheus", {"prometheus"}),
        ("prometheus,otel", {"prometheus", "otel"}),
        (" statsd , otel ", {"statsd", "otel"}),
    ],
)
def test_lab_metrics_is_a_list_of_pipelines(lab_metrics, chosen):
    assert pipelines(lab_metrics) == chosen

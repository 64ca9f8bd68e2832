"""otel-shared-instance-id: every gunicorn worker pushing OTLP under one service.instance.id.

OpenTelemetry's Flask instrumentation with a MeterProvider per worker, made after the fork as the
SDK's fork example does, and the container's one instance id from OTEL_RESOURCE_ATTRIBUTES
(lab/scenarios/naive/otel_shared_instance.py), against the lab's app (an id per worker).
"""

from pathlib import Path

from .otel_collisions import WORKERS, measure, rows_of, totals_chart
from .outcome import Outcome
from .running import naive_config

POD = "service.instance.id=pod-1"


def run(short: bool, logs: Path) -> Outcome:
    # The same environment for both: the pod's one id in OTEL_RESOURCE_ATTRIBUTES.
    measured = measure(
        short, logs, naive_config("otel_shared_instance"), "off", {"OTEL_RESOURCE_ATTRIBUTES": POD}
    )
    naive, lab = measured.naive, measured.lab
    return Outcome(
        scenario="otel-shared-instance-id",
        unit="requests the OTLP receiver counts (GET /)",
        rows=rows_of(
            measured,
            f"a MeterProvider per worker, OTEL_RESOURCE_ATTRIBUTES={POD} for all {WORKERS}",
            f"the lab's app under the same OTEL_RESOURCE_ATTRIBUTES: an id per worker ({WORKERS} workers)",
        ),
        margin=(
            f"stated: {WORKERS} writers of one series leave about one worker's count of {WORKERS}; "
            f"measured: {naive.total / measured.sent:.0%} of the truth, {naive.resets:g} resets"
        ),
        why=(
            "The receiver tells series apart by their labels, and the resource's service.instance.id "
            "becomes the `instance` label. Set once per container, it is the same in every worker: "
            "the workers' cumulative totals interleave in one series, which drops each time a worker "
            "that has answered fewer requests pushes (Prometheus reads every drop as a counter reset), "
            "and whose last value is one worker's total. Each process needs an id of its own, which the "
            "lab makes in each worker (app/otel.py) and passes to Resource.create, where it wins over "
            "the environment's attributes."
        ),
        reference="https://github.com/open-telemetry/opentelemetry-python/issues/2113",
        fix="app/otel.py (meter_provider: a uuid4 service.instance.id per worker)",
        short=short,
        details={
            "workers": WORKERS,
            "naive_instances": naive.instances,
            "naive_resets": naive.resets,
            "lab_instances": lab.instances,
            "lab_resets": lab.resets,
        },
        chart=totals_chart("otel-shared-instance-id", measured),
    )

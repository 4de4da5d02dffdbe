"""Where clients and workers send their metrics: ``temporalio.runtime``'s names.

Serve the SDK's metrics for Prometheus, and have the workers on a client report to it::

    from cadenza.runtime import PrometheusConfig, Runtime, TelemetryConfig

    runtime = Runtime(telemetry=TelemetryConfig(
        metrics=PrometheusConfig(bind_address="127.0.0.1:9464")))
    client = await Client.connect("localhost:9092", runtime=runtime)
    # http://127.0.0.1:9464/metrics: temporal_workflow_completed{...}, ...

:meth:`Runtime.default` has no metrics: its meter (``MetricMeter.noop``) records
nothing, and workers on it pay nothing for metrics.
"""

from ._runtime import PrometheusConfig, Runtime, TelemetryConfig

__all__ = ["PrometheusConfig", "Runtime", "TelemetryConfig"]

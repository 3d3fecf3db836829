"""Base names of the metrics the gateway exports, read from the gateway's own /metrics text.

Dashboards (deploy/grafana/dashboards/s4.json) and alert rules (deploy/alerts.yml) may only
use these. Histograms are listed by base name (their series add ``_bucket``, ``_sum`` and
``_count``); counters with their ``_total`` suffix, as they appear in the exposition. The
names come from a fresh ``Metrics`` registry rendered exactly as /metrics renders it, so a
renamed metric breaks the dashboard test instead of silently emptying a panel.
"""

from __future__ import annotations

from s4.metrics import Metrics

ISSUE_7_NAMES = {
    "s4_requests_total",
    "s4_request_duration_seconds",
    "s4_time_to_first_byte_seconds",
    "s4_requests_in_flight",
    "s4_bytes_in_total",
    "s4_bytes_out_total",
    "s4_backend_bytes_in_total",
    "s4_backend_bytes_out_total",
    "s4_compress_seconds",
    "s4_decompress_seconds",
    "s4_codec_input_bytes_total",
    "s4_codec_output_bytes_total",
    "s4_objects_stored_uncompressed_total",
    "s4_range_frames_fetched_total",
    "s4_backend_errors_total",
    "s4_sidecar_fallbacks_total",
    "s4_corrupt_frames_total",
    "s4_gpu_compress_seconds",
    "s4_gpu_decompress_seconds",
    "s4_gpu_throughput_bytes_per_sec",
    "s4_gpu_oom_total",
    "s4_gpu_in_flight",
    "s4_gpu_batch_frames",
    "s4_gpu_queue_depth",
    "s4_ledger_original_bytes",
    "s4_ledger_stored_bytes",
    "s4_ledger_objects",
}
"""What the observability issue asks the gateway to export."""


def exported_names() -> set[str]:
    names = set()
    for line in Metrics().render().decode().splitlines():
        if line.startswith("# TYPE s4_") and not line.split()[2].endswith("_created"):
            _, _, name, kind = line.split()
            names.add(name + "_total" if kind == "counter" and not name.endswith("_total") else name)
    return names


EXPORTED = exported_names()

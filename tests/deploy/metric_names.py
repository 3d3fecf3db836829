"""Base names of the metrics the gateway exports on /metrics.

Dashboards (deploy/grafana/dashboards/s4.json) and alert rules (deploy/alerts.yml) may only
use these. Histograms are listed by base name (their series add ``_bucket``, ``_sum`` and
``_count``); counters with their ``_total`` suffix, as they appear in the exposition.
"""

from __future__ import annotations

EXPORTED = {
    # Requests
    "s4_requests_total",
    "s4_request_duration_seconds",
    "s4_time_to_first_byte_seconds",
    "s4_requests_in_flight",
    # Bytes: client-side original bytes, and stored bytes
    "s4_bytes_in_total",
    "s4_bytes_out_total",
    "s4_backend_bytes_in_total",
    "s4_backend_bytes_out_total",
    # Codecs
    "s4_compress_seconds",
    "s4_decompress_seconds",
    "s4_codec_input_bytes_total",
    "s4_codec_output_bytes_total",
    # Store behaviour and integrity
    "s4_objects_stored_uncompressed_total",
    "s4_range_frames_fetched_total",
    "s4_backend_errors_total",
    "s4_sidecar_fallbacks_total",
    "s4_corrupt_frames_total",
    # GPU (declared everywhere, zero without a GPU)
    "s4_gpu_compress_seconds",
    "s4_gpu_decompress_seconds",
    "s4_gpu_throughput_bytes_per_sec",
    "s4_gpu_oom_total",
    "s4_gpu_in_flight",
    "s4_gpu_batch_frames",
    "s4_gpu_queue_depth",
}

"""Prometheus metrics: the one place that knows prometheus_client.

The codec layer reports through the registry's telemetry callback and the
compressing store keeps plain counters (``StoreStats``); both are turned into
Prometheus series here, so neither imports a metrics library. Base units (seconds,
bytes); no per-key labels; the bucket label is off unless asked for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values

from s4.codec import CodecOp, CompressTelemetry
from s4.codec.gpu.pool import GpuCodecPool
from s4.store.compressing.ledger import LedgerTotals
from s4.store.stats import StoreStats

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CODEC_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LEDGER_KINDS = ("data", "sidecar", "staging", "other")


STORE_COUNTERS = (
    ("backend_bytes_written", "s4_backend_bytes_in", "Stored bytes written to the backend"),
    ("backend_bytes_read", "s4_backend_bytes_out", "Stored bytes read from the backend"),
    ("range_frames_fetched", "s4_range_frames_fetched", "Frames fetched for Range GETs through the sidecar"),
    ("sidecar_fallbacks", "s4_sidecar_fallbacks", "Range GETs that could not use a sidecar"),
    ("corrupt_frames", "s4_corrupt_frames", "Stored frames found corrupt on read"),
)


def use_multiprocess_dir(path: str) -> None:
    """Metrics created after this call keep their values in ``path`` (prometheus_client's multiprocess mode),
    where every worker process of one server writes and any of them reads all: one /metrics for the server.

    Call it in each worker before it creates its Metrics; the directory must be empty when the server starts.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    values.ValueClass = values.get_value_class()


def _multiprocess_values() -> bool:
    return values.ValueClass is not values.MutexValue


def forget_process(path: str, pid: int) -> None:
    """A worker that exited: its live gauges (in flight) stop counting; its counters stay summed."""
    multiprocess.mark_process_dead(pid, path)


class Metrics:
    """The server's metrics. Values the store and the GPU pool keep as plain numbers are copied into
    counters and gauges by ``sync`` (at every scrape, and with several workers after every request too,
    since only the worker that serves a scrape can sync itself then)."""

    def __init__(self, bucket_label: bool = False) -> None:
        # Set by use_multiprocess_dir in a worker of several; metrics then live in that directory.
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") if _multiprocess_values() else None
        self.registry = CollectorRegistry(auto_describe=True)
        self.bucket_label = bucket_label
        r = self.registry
        request_labels = ["op", "status", "bucket"] if bucket_label else ["op", "status"]
        self.requests = Counter("s4_requests", "S3 requests by operation and status", request_labels, registry=r)
        self.duration = Histogram(
            "s4_request_duration_seconds",
            "Request time, headers in to last byte out",
            ["op"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "s4_time_to_first_byte_seconds",
            "Request headers in to response headers out",
            ["op"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "s4_requests_in_flight", "Requests being served", registry=r, multiprocess_mode="livesum"
        )
        self.bytes_in = Counter("s4_bytes_in", "Object bytes received from clients (original)", registry=r)
        self.bytes_out = Counter("s4_bytes_out", "Response bytes sent to clients (original)", registry=r)
        self.compress_seconds = Histogram(
            "s4_compress_seconds",
            "Time of one codec compress call",
            ["codec", "device"],
            buckets=CODEC_BUCKETS,
            registry=r,
        )
        self.decompress_seconds = Histogram(
            "s4_decompress_seconds",
            "Time of one codec decompress call",
            ["codec", "device"],
            buckets=CODEC_BUCKETS,
            registry=r,
        )
        self.codec_input = Counter("s4_codec_input_bytes", "Original bytes given to compression", ["codec"], registry=r)
        self.codec_output = Counter(
            "s4_codec_output_bytes", "Compressed bytes produced by compression", ["codec"], registry=r
        )
        self.backend_errors = Counter(
            "s4_backend_errors", "Failures of the backing store, by S3 error code", ["code"], registry=r
        )
        # The GPU set is declared even without a GPU so dashboards and alerts always find it.
        self.gpu_compress_seconds = Histogram(
            "s4_gpu_compress_seconds", "Time of one GPU compress batch", buckets=CODEC_BUCKETS, registry=r
        )
        self.gpu_decompress_seconds = Histogram(
            "s4_gpu_decompress_seconds", "Time of one GPU decompress batch", buckets=CODEC_BUCKETS, registry=r
        )
        self.gpu_throughput = Gauge(
            "s4_gpu_throughput_bytes_per_sec",
            "Original bytes per second of the last GPU batch",
            ["codec", "op"],
            registry=r,
            multiprocess_mode="max",
        )
        self.gpu_oom = Counter("s4_gpu_oom", "GPU batches that ran out of device memory", registry=r)
        self.gpu_in_flight = Gauge("s4_gpu_in_flight", "Frames on the GPU", registry=r, multiprocess_mode="livesum")
        self.gpu_batch_frames = Histogram(
            "s4_gpu_batch_frames", "Frames per GPU batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.gpu_queue_depth = Gauge(
            "s4_gpu_queue_depth", "Frames waiting for the GPU", registry=r, multiprocess_mode="livesum"
        )
        self.store_counters = {field: Counter(name, doc, registry=r) for field, name, doc in STORE_COUNTERS}
        self.stored_uncompressed = Counter(
            "s4_objects_stored_uncompressed", "Objects stored as passthrough frames, by reason", ["reason"], registry=r
        )
        self.gpu_cpu_fallback = Counter(
            "s4_gpu_cpu_fallback_frames",
            "Frames the GPU could not process, done on the CPU instead",
            ["op"],
            registry=r,
        )
        for op in ("compress", "decompress"):
            self.gpu_cpu_fallback.labels(op)
        # The savings ledger, read from the store (s4.store.compressing.ledger) by one process of the gateway:
        # the most recent value of a live process is the one shown.
        self.ledger_original = Gauge(
            "s4_ledger_original_bytes",
            "Original bytes of the bucket's stored objects (every version)",
            ["bucket"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.ledger_stored = Gauge(
            "s4_ledger_stored_bytes",
            "Bytes the bucket holds in the store, by kind (data, sidecar, staging, other)",
            ["bucket", "kind"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.ledger_objects = Gauge(
            "s4_ledger_objects",
            "Stored objects of the bucket (every version; delete markers not counted)",
            ["bucket"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self._ledger_buckets: set[str] = set()
        self._store: StoreStats | None = None
        self._pool: GpuCodecPool | None = None
        self._synced: dict[str, int] = {}

    def watch_store(self, stats: StoreStats) -> None:
        self._store = stats

    def watch_gpu(self, pool: GpuCodecPool) -> None:
        """GPU gauges and the count of CPU fallbacks, read from the pool at every sync."""
        self._pool = pool

    def sync(self) -> None:
        """Copy what the store and the GPU pool counted since the last sync into the metrics."""
        if self._store is not None:
            for field, _, _ in STORE_COUNTERS:
                self._add(field, getattr(self._store, field), self.store_counters[field])
            for reason, count in list(self._store.objects_stored_uncompressed.items()):
                self._add(f"uncompressed:{reason}", count, self.stored_uncompressed.labels(reason))
        if self._pool is not None:
            self.gpu_in_flight.set(self._pool.gpu_in_flight)
            self.gpu_queue_depth.set(self._pool.gpu_queue_depth)
            stats = self._pool.gpu_stats
            self._add("gpu:compress", stats.cpu_fallback_frames, self.gpu_cpu_fallback.labels("compress"))
            self._add("gpu:decompress", stats.cpu_decoded_frames, self.gpu_cpu_fallback.labels("decompress"))

    def _add(self, name: str, total: int, counter) -> None:
        delta = total - self._synced.get(name, 0)
        if delta > 0:
            counter.inc(delta)
            self._synced[name] = total

    def set_ledgers(self, ledgers: Mapping[str, LedgerTotals], max_buckets: int) -> None:
        """The ``s4_ledger_*`` gauges of the ``max_buckets`` buckets that hold the most stored bytes.

        The bucket label is bounded so: a store with thousands of buckets shows its largest. A bucket
        that drops out (deleted, or overtaken) is removed, or, where several processes share the
        metrics (their files cannot forget a series), set to 0.
        """
        shown = sorted(ledgers, key=lambda b: (-ledgers[b].stored_bytes, b))[:max_buckets]
        for bucket in shown:
            t = ledgers[bucket]
            self.ledger_original.labels(bucket).set(t.original_bytes)
            self.ledger_objects.labels(bucket).set(t.objects)
            for kind in LEDGER_KINDS:
                self.ledger_stored.labels(bucket, kind).set(getattr(t, f"{kind}_bytes"))
        for bucket in self._ledger_buckets - set(shown):
            series = [(self.ledger_original, (bucket,)), (self.ledger_objects, (bucket,))]
            series += [(self.ledger_stored, (bucket, kind)) for kind in LEDGER_KINDS]
            for gauge, labels in series:
                if self.multiprocess_dir is None:
                    gauge.remove(*labels)
                else:
                    gauge.labels(*labels).set(0)
        self._ledger_buckets = set(shown)

    def codec_telemetry(self, record: CompressTelemetry) -> None:
        """The codec registry's callback (called from worker threads; prometheus_client is thread-safe)."""
        codec = record.codec.wire_name
        gpu = record.device != "cpu"
        if record.op is CodecOp.COMPRESS:
            self.compress_seconds.labels(codec, record.device).observe(record.seconds)
            self.codec_input.labels(codec).inc(record.bytes_in)
            self.codec_output.labels(codec).inc(record.bytes_out)
            if gpu:
                self.gpu_compress_seconds.observe(record.seconds)
        else:
            self.decompress_seconds.labels(codec, record.device).observe(record.seconds)
            if gpu:
                self.gpu_decompress_seconds.observe(record.seconds)
        if gpu:
            self.gpu_batch_frames.observe(record.frames)
            self.gpu_throughput.labels(codec, record.op.value).set(record.throughput_bytes_per_sec)
            if record.oom:
                self.gpu_oom.inc()

    def observe_request(
        self, op: str, status: int, seconds: float, bytes_in: int, bytes_out: int, bucket: str | None
    ) -> None:
        labels = (op, str(status), bucket or "") if self.bucket_label else (op, str(status))
        self.requests.labels(*labels).inc()
        self.duration.labels(op).observe(seconds)
        self.bytes_in.inc(bytes_in)
        self.bytes_out.inc(bytes_out)
        if self.multiprocess_dir is not None:
            self.sync()

    def render(self) -> bytes:
        """The text exposition: this process's registry, or every worker's values summed."""
        self.sync()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged)

"""Prometheus metrics: the one place that knows prometheus_client.

The codec layer reports through the registry's telemetry callback and the
compressing store keeps plain counters (``StoreStats``); both are turned into
Prometheus series here, so neither imports a metrics library. Base units (seconds,
bytes); no per-key labels; the bucket label is off unless asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from s4.codec import CodecOp, CompressTelemetry
from s4.codec.gpu.pool import GpuCodecPool
from s4.store.stats import StoreStats

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CODEC_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreStatsCollector(Collector):
    """Exposes the compressing store's counters as they are at scrape time."""

    def __init__(self, stats: Callable[[], StoreStats | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
        stats = self._stats() or StoreStats()
        simple = (
            ("s4_backend_bytes_in", "Stored bytes written to the backend", stats.backend_bytes_written),
            ("s4_backend_bytes_out", "Stored bytes read from the backend", stats.backend_bytes_read),
            (
                "s4_range_frames_fetched",
                "Frames fetched for Range GETs through the sidecar",
                stats.range_frames_fetched,
            ),
            ("s4_sidecar_fallbacks", "Range GETs that could not use a sidecar", stats.sidecar_fallbacks),
            ("s4_corrupt_frames", "Stored frames found corrupt on read", stats.corrupt_frames),
        )
        for name, doc, value in simple:
            family = CounterMetricFamily(name, doc)
            family.add_metric([], value)
            yield family
        uncompressed = CounterMetricFamily(
            "s4_objects_stored_uncompressed", "Objects stored raw, by reason", labels=["reason"]
        )
        for reason, count in sorted(stats.objects_stored_uncompressed.items()):
            uncompressed.add_metric([reason], count)
        yield uncompressed

    def describe(self) -> Iterator[CounterMetricFamily]:
        return iter(())


class GpuFallbackCollector(Collector):
    """Frames the GPU could not do, done on the CPU instead (none is ever lost)."""

    def __init__(self, pool: GpuCodecPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "s4_gpu_cpu_fallback_frames", "Frames the GPU could not process, done on the CPU instead", labels=["op"]
        )
        family.add_metric(["compress"], self._pool.gpu_stats.cpu_fallback_frames)
        family.add_metric(["decompress"], self._pool.gpu_stats.cpu_decoded_frames)
        yield family

    def describe(self) -> Iterator[CounterMetricFamily]:
        return iter(())


class Metrics:
    def __init__(self, bucket_label: bool = False) -> None:
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
        self.in_flight = Gauge("s4_requests_in_flight", "Requests being served", registry=r)
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
        )
        self.gpu_oom = Counter("s4_gpu_oom", "GPU batches that ran out of device memory", registry=r)
        self.gpu_in_flight = Gauge("s4_gpu_in_flight", "Frames on the GPU", registry=r)
        self.gpu_batch_frames = Histogram(
            "s4_gpu_batch_frames", "Frames per GPU batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.gpu_queue_depth = Gauge("s4_gpu_queue_depth", "Frames waiting for the GPU", registry=r)
        self._store_stats: Callable[[], StoreStats | None] = lambda: None
        r.register(StoreStatsCollector(lambda: self._store_stats()))

    def watch_store(self, stats: StoreStats) -> None:
        self._store_stats = lambda: stats

    def watch_gpu(self, pool: GpuCodecPool) -> None:
        """Live GPU gauges read from the pool at scrape time, and its count of CPU fallbacks."""
        self.gpu_in_flight.set_function(lambda: pool.gpu_in_flight)
        self.gpu_queue_depth.set_function(lambda: pool.gpu_queue_depth)
        self.registry.register(GpuFallbackCollector(pool))

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

    def render(self) -> bytes:
        return generate_latest(self.registry)

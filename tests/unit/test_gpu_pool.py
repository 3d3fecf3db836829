"""The GPU pool's logic on a CPU stand-in device: batching across requests, order, cancellation,
back-pressure, OOM split then CPU fallback, isolation of a bad frame, shutdown with work in flight,
start-up (gpu: auto | on | off), promotion, metrics, and what a CPU-only node makes of GPU objects.

The stand-in (tests/unit/gpu_standin.py) sits behind the same DeviceBackend interface as
nvCOMP, so everything here runs the production pool code.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import threading
import zlib

import pytest

from s4.codec import (
    CodecDispatcher,
    CodecError,
    CodecKind,
    CodecRegistry,
    CpuCodecPool,
    FrameHeader,
    decode_frame,
)
from s4.codec.cpu.nvcomp_zstd import NvcompZstdCpuCodec
from s4.codec.gpu.device_codec import DeviceCodec
from s4.codec.gpu.dietgpu import NO_LIBRARY_REASON, load_dietgpu
from s4.codec.gpu.nvcomp import NvcompProbe, probe
from s4.codec.gpu.nvcomp_layout import read_container
from s4.codec.gpu.pool import GpuCodecPool
from s4.codec.gpu.promotion import GpuPromotion
from s4.codec.gpu.queue import QueueClosed
from s4.codec.gpu.setup import GpuSettings, codec_report, setup_gpu
from s4.codec.policy import FramePolicy
from s4.codec.telemetry import CodecOp, CompressTelemetry
from s4.config import ConfigError, load_config
from s4.gateway import build_codecs
from s4.metrics import Metrics
from s4.store.base import ObjectAttributes, StoreError, StoreErrorKind
from s4.store.compressing.store import CompressingStore
from s4.store.filesystem import FilesystemStore
from tests.unit.gpu_standin import StandInDevice
from tests.unit.store_helpers import body, read_all

KiB = 1024
MiB = 1024 * KiB
GDEFLATE = CodecKind.NVCOMP_GDEFLATE
ZSTD = CodecKind.NVCOMP_ZSTD
FOUND = NvcompProbe(True, None, "standin:0 (a CPU)", "standin")


def text(seed: int, size: int = 100 * KiB) -> bytes:
    rng = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"frame%d" % seed, b"\n"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def make_pool(
    device: StandInDevice,
    *,
    streams: int = 1,
    batch_bytes: int = 64 * MiB,
    wait: float = 0.0,
    queue_bytes: int = 256 * MiB,
    telemetry=None,
    prefer_columnar: bool = False,
) -> tuple[GpuCodecPool, CodecRegistry, object]:
    registry = CodecRegistry.cpu_default(telemetry=telemetry)
    settings = GpuSettings(
        mode="on",
        streams=streams,
        batch_bytes=batch_bytes,
        batch_wait_ms=wait * 1000,
        queue_bytes=queue_bytes,
        min_bytes=256 * KiB,
        prefer_columnar=prefer_columnar,
    )
    setup = setup_gpu(registry, settings, backend_factory=device.factory, probe_device=lambda _d: FOUND)
    pool = setup.pool(registry)
    assert isinstance(pool, GpuCodecPool)
    return pool, registry, setup


def standin_decode(kind: CodecKind, payload: bytes, size: int) -> bytes:
    """Read a stand-in container without any pool (zlib chunks; zstd for nvcomp-zstd)."""
    if kind is ZSTD:
        return NvcompZstdCpuCodec().decompress(payload, size)
    return b"".join(zlib.decompress(bytes(c)) for c in read_container(kind, payload, size).chunks)


# --- batching and order ------------------------------------------------------------------------------


def test_frames_of_concurrent_requests_share_one_batch_and_come_back_to_their_callers():
    device = StandInDevice()
    datas = [text(i) for i in range(8)]

    async def main():
        pool, _, _ = make_pool(device, wait=0.3)
        try:
            frames = await asyncio.gather(*(pool.encode_frame(ZSTD, d) for d in datas))
            back = await asyncio.gather(*(pool.decode_frame(f.header, f.payload) for f in frames))
        finally:
            pool.close()
        return frames, back

    frames, back = asyncio.run(main())
    assert device.batch_sizes(CodecOp.COMPRESS) == [8]
    assert device.batch_sizes(CodecOp.DECOMPRESS) == [8]
    assert sorted(device.frames_seen(CodecOp.COMPRESS)) == sorted(datas)
    assert [f.header.codec for f in frames] == [ZSTD] * 8
    assert back == datas
    # A plain CPU node reads every one of them: nvcomp-zstd chunks are standard zstd frames.
    cpu = CodecRegistry.cpu_default()
    assert [decode_frame(cpu, f.header, f.payload) for f in frames] == datas


def test_a_batch_closes_at_its_byte_bound():
    device = StandInDevice()

    async def main():
        pool, _, _ = make_pool(device, wait=0.3, batch_bytes=250 * KiB)
        try:
            return await asyncio.gather(*(pool.compress(GDEFLATE, text(i)) for i in range(8)))
        finally:
            pool.close()

    payloads = asyncio.run(main())
    assert device.batch_sizes(CodecOp.COMPRESS) == [2, 2, 2, 2]
    assert [standin_decode(GDEFLATE, p, 100 * KiB) for p in payloads] == [text(i) for i in range(8)]


def test_32_concurrent_requests_on_two_streams_each_get_their_own_bytes():
    device = StandInDevice()
    rng = random.Random(1)
    datas = [text(i, rng.randrange(1, 300 * KiB)) for i in range(32)]

    async def request(pool: GpuCodecPool, data: bytes) -> bytes:
        frame = await pool.encode_frame(GDEFLATE, data)
        assert frame.header.codec is GDEFLATE
        return await pool.decode_frame(frame.header, frame.payload)

    async def main():
        pool, _, _ = make_pool(device, streams=2, wait=0.005, batch_bytes=1 * MiB)
        try:
            return await asyncio.gather(*(request(pool, d) for d in datas))
        finally:
            pool.close()

    assert asyncio.run(main()) == datas
    assert max(device.batch_sizes(CodecOp.COMPRESS)) > 1  # batched across requests
    assert device.closed == 2  # each stream's backend freed at shutdown


def test_threads_batch_through_the_registry_codec_too():
    device = StandInDevice()

    async def main():
        pool, registry, _ = make_pool(device, wait=0.2)
        try:
            codec = registry.get(CodecKind.NVCOMP_BITCOMP)
            assert isinstance(codec, DeviceCodec)
            assert registry.status(CodecKind.NVCOMP_BITCOMP).device == "standin:0"
            column = struct.pack("<20000i", *range(20000))
            datas = [column, text(1), text(2)]
            payloads = await asyncio.to_thread(codec.compress_batch, datas)
            back = await asyncio.to_thread(codec.decompress_batch, payloads, [len(d) for d in datas])
            return payloads, back, datas
        finally:
            pool.close()

    payloads, back, datas = asyncio.run(main())
    assert back == datas
    assert device.batch_sizes(CodecOp.COMPRESS) == [1, 2]  # an i32 column, then two byte frames
    assert read_container(CodecKind.NVCOMP_BITCOMP, payloads[0], len(datas[0])).data_type == 3  # u32
    assert read_container(CodecKind.NVCOMP_BITCOMP, payloads[1], len(datas[1])).data_type == 0


# --- cancellation and back-pressure ------------------------------------------------------------------


def test_a_cancelled_waiting_request_leaves_the_queue_and_never_reaches_the_device():
    device = StandInDevice()
    device.gate.clear()
    a, b, c = text(1), text(2), text(3)

    async def main():
        pool, _, _ = make_pool(device)
        try:
            first = asyncio.create_task(pool.compress(GDEFLATE, a))
            await asyncio.to_thread(device.entered.acquire)  # the worker holds `a` at the device
            second = asyncio.create_task(pool.compress(GDEFLATE, b))
            third = asyncio.create_task(pool.compress(GDEFLATE, c))
            await asyncio.sleep(0.05)
            assert pool.gpu_queue_depth == 2 and pool.gpu_in_flight == 1
            second.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await second
            assert pool.gpu_queue_depth == 1
            assert pool.engine.queue.queued_bytes == len(c)
            device.gate.set()
            return await first, await third
        finally:
            device.gate.set()
            pool.close()

    pa, pc = asyncio.run(main())
    assert b not in device.frames_seen(CodecOp.COMPRESS)
    assert device.frames_seen(CodecOp.COMPRESS) == [a, c]
    assert standin_decode(GDEFLATE, pa, len(a)) == a and standin_decode(GDEFLATE, pc, len(c)) == c


def test_submitters_wait_for_room_in_the_queue():
    device = StandInDevice()
    device.gate.clear()
    datas = [text(i) for i in range(6)]

    async def main():
        # One frame per batch, room for two waiting frames.
        pool, _, _ = make_pool(device, batch_bytes=100 * KiB, queue_bytes=200 * KiB)
        try:
            tasks = [asyncio.create_task(pool.compress(GDEFLATE, d)) for d in datas]
            await asyncio.to_thread(device.entered.acquire)
            await asyncio.sleep(0.05)
            queue = pool.engine.queue
            assert (queue.depth, queue.queued_bytes, pool.gpu_in_flight) == (2, 200 * KiB, 1)
            assert not any(t.done() for t in tasks)  # three callers wait for room, not in memory
            device.gate.set()
            return await asyncio.gather(*tasks)
        finally:
            device.gate.set()
            pool.close()

    payloads = asyncio.run(main())
    assert [standin_decode(GDEFLATE, p, len(d)) for p, d in zip(payloads, datas, strict=True)] == datas
    assert device.batch_sizes(CodecOp.COMPRESS) == [1] * 6


# --- device failures ---------------------------------------------------------------------------------


def test_out_of_memory_batches_are_split_and_retried():
    device = StandInDevice()
    device.oom_when = lambda op, frames: len(frames) > 2
    records: list[CompressTelemetry] = []
    datas = [text(i) for i in range(8)]

    async def main():
        pool, _, _ = make_pool(device, wait=0.3, telemetry=records.append)
        try:
            frames = await asyncio.gather(*(pool.encode_frame(ZSTD, d) for d in datas))
            return frames, pool.engine.stats, pool.gpu_stats
        finally:
            pool.close()

    frames, stats, gpu_stats = asyncio.run(main())
    assert device.batch_sizes(CodecOp.COMPRESS) == [8, 4, 2, 2, 4, 2, 2]
    assert [f.header.codec for f in frames] == [ZSTD] * 8
    assert (stats.oom_batches, stats.oom_splits, gpu_stats.cpu_fallback_frames) == (3, 3, 0)
    gpu_records = [r for r in records if r.device.startswith("standin")]
    assert [r.frames for r in gpu_records if r.oom] == [8, 4, 4]
    assert sum(r.frames for r in gpu_records if not r.oom) == 8
    cpu = CodecRegistry.cpu_default()
    assert [decode_frame(cpu, f.header, f.payload) for f in frames] == datas


def test_a_frame_that_never_fits_is_compressed_with_cpu_zstd_instead():
    device = StandInDevice()
    big = text(99, 300 * KiB)
    device.oom_when = lambda op, frames: any(len(f) > 200 * KiB for f in frames)
    datas = [text(1), big, text(2)]

    async def main():
        pool, _, _ = make_pool(device, wait=0.3)
        try:
            frames = await asyncio.gather(*(pool.encode_frame(ZSTD, d) for d in datas))
            return frames, pool.gpu_stats.cpu_fallback_frames, pool.engine.stats
        finally:
            pool.close()

    frames, fallbacks, stats = asyncio.run(main())
    assert [f.header.codec for f in frames] == [ZSTD, CodecKind.CPU_ZSTD, ZSTD]
    assert fallbacks == 1
    assert stats.failed_frames == 1
    cpu = CodecRegistry.cpu_default()
    assert [decode_frame(cpu, f.header, f.payload) for f in frames] == datas


def test_a_device_fault_while_compressing_loses_no_frame():
    device = StandInDevice()
    device.fail_when = lambda op, frames: op is CodecOp.COMPRESS
    datas = [text(i) for i in range(3)]

    async def main():
        pool, _, _ = make_pool(device, wait=0.2)
        try:
            frames = await asyncio.gather(*(pool.encode_frame(GDEFLATE, d) for d in datas))
            back = await asyncio.gather(*(pool.decode_frame(f.header, f.payload) for f in frames))
            return frames, back, pool.gpu_stats.cpu_fallback_frames
        finally:
            pool.close()

    frames, back, fallbacks = asyncio.run(main())
    assert [f.header.codec for f in frames] == [CodecKind.CPU_ZSTD] * 3
    assert back == datas and fallbacks == 3


def test_a_frame_the_device_cannot_decode_fails_alone():
    device = StandInDevice()
    datas = [text(i) for i in range(4)]

    async def main():
        pool, _, _ = make_pool(device, wait=0.3)
        try:
            payloads = [await pool.compress(GDEFLATE, d) for d in datas]
            container = read_container(GDEFLATE, payloads[3], len(datas[3]))
            start = len(payloads[3]) - container.compressed_bytes
            bad = bytearray(payloads[3])
            bad[start + 10 : start + 30] = b"\xff" * 20  # inside the first zlib stream
            payloads[3] = bytes(bad)
            device.batches.clear()
            return await asyncio.gather(
                *(pool.decompress(GDEFLATE, p, len(d)) for p, d in zip(payloads, datas, strict=True)),
                return_exceptions=True,
            )
        finally:
            pool.close()

    results = asyncio.run(main())
    assert results[:3] == datas[:3]
    error = results[3]
    assert isinstance(error, CodecError) and not error.is_corrupt
    assert "nvcomp-gdeflate" in str(error)
    assert device.batch_sizes(CodecOp.DECOMPRESS) == [4, 2, 2, 1, 1]  # bisected down to the bad frame


def test_an_nvcomp_zstd_frame_the_device_cannot_decode_is_decoded_on_the_cpu():
    device = StandInDevice()
    device.oom_when = lambda op, frames: op is CodecOp.DECOMPRESS
    data = text(7, 200 * KiB)

    async def main():
        pool, _, _ = make_pool(device)
        try:
            frame = await pool.encode_frame(ZSTD, data)
            out = await pool.decode_frame(frame.header, frame.payload)
            # A CRC that does not match is still caught, whoever decoded.
            bad = FrameHeader(frame.header.codec, frame.header.original_size, frame.header.compressed_size, 1)
            with pytest.raises(CodecError) as info:
                await pool.decode_frame(bad, frame.payload)
            assert info.value.is_corrupt
            return out, pool.gpu_stats.cpu_decoded_frames
        finally:
            pool.close()

    out, decoded_on_cpu = asyncio.run(main())
    assert out == data and decoded_on_cpu == 2


def test_a_corrupt_container_is_refused_before_it_reaches_the_device():
    device = StandInDevice()

    async def main():
        pool, _, _ = make_pool(device)
        try:
            with pytest.raises(CodecError) as info:
                await pool.decompress(GDEFLATE, b"FCG1" + bytes(30), 100)
            return info.value
        finally:
            pool.close()

    error = asyncio.run(main())
    assert error.is_corrupt
    assert device.batches == []


# --- shutdown ------------------------------------------------------------------------------------------


def test_shutdown_finishes_the_work_in_flight_and_refuses_new_work():
    device = StandInDevice()
    device.gate.clear()
    datas = [text(i) for i in range(5)]

    async def main():
        pool, _, _ = make_pool(device, batch_bytes=100 * KiB)
        try:
            tasks = [asyncio.create_task(pool.compress(GDEFLATE, d)) for d in datas]
            await asyncio.to_thread(device.entered.acquire)
            await asyncio.sleep(0.05)
            closing = asyncio.create_task(asyncio.to_thread(pool.engine.close))
            await asyncio.sleep(0.05)
            assert not closing.done()  # waits for the queued frames
            with pytest.raises(QueueClosed):
                await pool.engine.compress(GDEFLATE, b"too late")
            device.gate.set()
            await closing
            return await asyncio.gather(*tasks)
        finally:
            device.gate.set()
            pool.close()

    payloads = asyncio.run(main())
    assert [standin_decode(GDEFLATE, p, len(d)) for p, d in zip(payloads, datas, strict=True)] == datas
    assert device.closed == 1


def test_after_shutdown_frames_still_go_to_the_cpu():
    device = StandInDevice()

    async def main():
        pool, _, _ = make_pool(device)
        try:
            pool.engine.close()
            frame = await pool.encode_frame(ZSTD, text(3))
            return frame, await pool.decode_frame(frame.header, frame.payload)
        finally:
            pool.close()

    frame, back = asyncio.run(main())
    assert frame.header.codec is CodecKind.CPU_ZSTD and back == text(3)


def test_a_backend_that_cannot_start_makes_the_gpu_unavailable():
    def broken(_index):
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    registry = CodecRegistry.cpu_default()
    setup = setup_gpu(registry, GpuSettings(mode="auto"), backend_factory=broken, probe_device=lambda _d: FOUND)
    assert setup.engine is None and "no GPU worker could start" in setup.reason
    assert "no CUDA-capable device" in registry.status(CodecKind.NVCOMP_BITCOMP).reason
    with pytest.raises(CodecError, match="gpu is on"):
        setup_gpu(CodecRegistry.cpu_default(), GpuSettings(mode="on"), broken, lambda _d: FOUND)


# --- start-up: gpu auto | on | off ----------------------------------------------------------------------


def test_gpu_off_touches_no_gpu_and_says_so():
    registry = CodecRegistry.cpu_default()
    setup = setup_gpu(registry, GpuSettings(mode="off"), probe_device=lambda _d: pytest.fail("probed"))
    assert setup.engine is None and setup.promotion is None
    assert type(setup.pool(registry)) is CpuCodecPool
    for kind in (CodecKind.NVCOMP_BITCOMP, CodecKind.NVCOMP_GANS, CodecKind.NVCOMP_GDEFLATE, CodecKind.DIETGPU_ANS):
        assert "gpu: off" in registry.status(kind).reason
    assert registry.status(ZSTD).device == "cpu"  # nvcomp-zstd still runs on the CPU


def test_gpu_auto_without_a_gpu_runs_on_the_cpu_with_the_reason():
    registry = CodecRegistry.cpu_default()
    missing = NvcompProbe(False, "no CUDA device: cudaErrorNoDevice")
    setup = setup_gpu(registry, GpuSettings(mode="auto"), probe_device=lambda _d: missing)
    assert setup.engine is None and type(setup.pool(registry)) is CpuCodecPool
    status = registry.status(CodecKind.NVCOMP_GANS)
    assert not status.available and "cudaErrorNoDevice" in status.reason
    with pytest.raises(CodecError) as info:
        setup_gpu(CodecRegistry.cpu_default(), GpuSettings(mode="on"), probe_device=lambda _d: missing)
    assert not info.value.is_corrupt and "cudaErrorNoDevice" in str(info.value)


def test_the_real_probe_answers_with_a_reason_when_it_finds_nothing():
    found = probe()
    assert found.available or (found.reason and found.device is None)


def test_serve_refuses_gpu_on_without_a_gpu_and_runs_without_one_on_auto(monkeypatch):
    monkeypatch.setattr("s4.codec.gpu.setup.probe", lambda _d: NvcompProbe(False, "CuPy is not installed"))
    with pytest.raises(ConfigError, match="CuPy is not installed"):
        build_codecs(load_config(None, env={"S4_GPU": "on"}))
    pool, dispatcher, _ = build_codecs(load_config(None, env={}))
    try:
        assert type(pool) is CpuCodecPool and dispatcher.promotion is None
    finally:
        pool.close()
    with pytest.raises(ConfigError, match="nvcomp-bitcomp cannot run here"):
        build_codecs(load_config(None, env={"S4_CODEC": "nvcomp-bitcomp"}))


def test_serve_builds_the_gpu_pool_and_promotion_when_a_gpu_is_found(monkeypatch):
    device = StandInDevice()
    monkeypatch.setattr("s4.codec.gpu.setup.probe", lambda _d: FOUND)
    monkeypatch.setattr("s4.codec.gpu.setup._nvcomp_factory", lambda _device: device.factory)
    metrics = Metrics()
    pool, dispatcher, _ = build_codecs(load_config(None, env={"S4_CODEC": "nvcomp-bitcomp"}), metrics)
    try:
        assert isinstance(pool, GpuCodecPool) and dispatcher.default is CodecKind.NVCOMP_BITCOMP
        assert dispatcher.frame_codec(CodecKind.CPU_ZSTD, text(1, 2 * MiB)) is ZSTD
        frame = asyncio.run(pool.encode_frame(ZSTD, text(4)))
    finally:
        pool.close()
    exposition = metrics.render().decode()
    assert 's4_gpu_throughput_bytes_per_sec{codec="nvcomp-zstd",op="compress"}' in exposition
    assert "s4_gpu_batch_frames_count 1.0" in exposition
    assert "s4_gpu_queue_depth 0.0" in exposition
    assert 's4_gpu_cpu_fallback_frames_total{op="compress"} 0.0' in exposition
    assert frame.header.codec is ZSTD


def test_gpu_settings_from_the_configuration(tmp_path):
    path = tmp_path / "s4.yaml"
    path.write_text("gpu: off\n")  # YAML reads a bare off as false
    assert load_config(path, env={}).gpu.mode == "off"
    path.write_text("gpu:\n  mode: on\n  streams: 4\n  batch_wait_ms: 0.5\n  dietgpu_library: /opt/d.so\n")
    config = load_config(path, env={"S4_GPU": "auto"})  # the environment wins over the file
    settings = GpuSettings.from_mapping(config.gpu.model_dump())
    assert (settings.mode, settings.streams, settings.batch_wait_ms) == ("auto", 4, 0.5)
    assert settings.dietgpu_library == "/opt/d.so"
    assert load_config(path, env={}, overrides={"gpu_mode": "off"}).gpu.streams == 4  # a flag keeps the section
    with pytest.raises(ConfigError, match="gpu"):
        load_config(None, env={"S4_GPU": "sometimes"})


def test_codec_report_lists_every_codec_with_where_or_why():
    missing = NvcompProbe(False, "no CUDA device")
    statuses, line = codec_report(GpuSettings(), probe_device=lambda _d: missing)
    by_kind = {s.kind: s for s in statuses}
    assert len(by_kind) == len(CodecKind)
    assert line == "GPU: none (no CUDA device)"
    assert by_kind[ZSTD].available and by_kind[ZSTD].device == "cpu"
    assert "no CUDA device" in by_kind[CodecKind.NVCOMP_BITCOMP].reason
    assert "DietGPU" in by_kind[CodecKind.DIETGPU_ANS].reason
    statuses, line = codec_report(GpuSettings(), probe_device=lambda _d: FOUND)
    assert line == "GPU: standin:0 (a CPU), nvCOMP standin"
    assert all(s.available and s.device == FOUND.device for s in statuses if s.kind.wire_name.startswith("nvcomp"))
    statuses, line = codec_report(GpuSettings(mode="off"), probe_device=lambda _d: pytest.fail("probed"))
    assert "gpu: off" in {s.kind: s for s in statuses}[CodecKind.DIETGPU_ANS].reason


def test_dietgpu_is_unavailable_with_the_reason_never_a_crash(tmp_path):
    with pytest.raises(CodecError) as info:
        load_dietgpu(None)
    assert info.value.message == NO_LIBRARY_REASON
    with pytest.raises(CodecError, match="does not exist"):
        load_dietgpu(tmp_path / "libdietgpu.so")
    fake = tmp_path / "libdietgpu.so"
    fake.write_bytes(b"not a shared library")
    with pytest.raises(CodecError) as info:
        load_dietgpu(fake)
    assert not info.value.is_corrupt  # unavailable: PyTorch missing, no CUDA, or the file does not load
    registry = CodecRegistry.cpu_default()
    setup_gpu(registry, GpuSettings(dietgpu_library=str(fake)), probe_device=lambda _d: NvcompProbe(False, "x"))
    assert str(fake) in registry.status(CodecKind.DIETGPU_ANS).reason or "PyTorch" in (
        registry.status(CodecKind.DIETGPU_ANS).reason
    )


# --- promotion -----------------------------------------------------------------------------------------


def test_promotion_moves_large_zstd_frames_and_integer_columns_only():
    promote = GpuPromotion({ZSTD, CodecKind.NVCOMP_BITCOMP}, min_bytes=256 * KiB, prefer_columnar=True)
    column = struct.pack("<65536q", *range(65536))
    assert promote(CodecKind.CPU_ZSTD, text(1, 300 * KiB)) is ZSTD
    assert promote(CodecKind.CPU_ZSTD, text(1, 100 * KiB)) is CodecKind.CPU_ZSTD
    assert promote(CodecKind.CPU_ZSTD, column) is CodecKind.NVCOMP_BITCOMP
    assert promote(CodecKind.NVCOMP_ZSTD, column) is CodecKind.NVCOMP_BITCOMP
    assert promote(CodecKind.CPU_GZIP, text(1, 300 * KiB)) is CodecKind.CPU_GZIP
    assert promote(CodecKind.PASSTHROUGH, column) is CodecKind.PASSTHROUGH
    plain = GpuPromotion({ZSTD, CodecKind.NVCOMP_BITCOMP}, min_bytes=256 * KiB)
    assert plain(CodecKind.CPU_ZSTD, column) is ZSTD
    dispatcher = CodecDispatcher(CodecKind.CPU_ZSTD, promotion=promote)
    assert dispatcher.frame_codec(CodecKind.CPU_ZSTD, column) is CodecKind.NVCOMP_BITCOMP


# --- the store on a GPU node and on a CPU node ------------------------------------------------------------

FRAME = 256 * KiB
POLICY = FramePolicy(single_frame_max=FRAME, medium_frame=FRAME, large_frame=FRAME, unknown_frame=FRAME)


def test_objects_written_on_a_gpu_node_read_on_a_cpu_node(tmp_path):
    """nvcomp-zstd frames decode anywhere; a frame only a GPU can decode is a 503-class error naming
    its codec, never bytes."""
    from s4.server.app import translate

    device = StandInDevice()
    logs = text(5, 1 * MiB + 123)
    column = struct.pack("<131072i", *(random.Random(2).randrange(1000) for _ in range(131072)))

    async def write() -> None:
        pool, _, setup = make_pool(device, wait=0.002, prefer_columnar=True)
        inner = await FilesystemStore.open(tmp_path, durable=False)
        store = CompressingStore(inner, pool, CodecDispatcher(promotion=setup.promotion), POLICY)
        try:
            await store.create_bucket("b")
            for key, data in (("logs", logs), ("column", column)):
                await store.put_object("b", key, body(data[: 300 * KiB], data[300 * KiB :]), ObjectAttributes())
                assert await read_all(await store.get_object("b", key)) == data
        finally:
            await store.close()
            pool.close()

    async def read_on_cpu():
        inner = await FilesystemStore.open(tmp_path, durable=False)
        store = CompressingStore(inner, CpuCodecPool(CodecRegistry.cpu_default(), workers=2), CodecDispatcher(), POLICY)
        try:
            got = await read_all(await store.get_object("b", "logs"))
            with pytest.raises(StoreError) as info:
                await read_all(await store.get_object("b", "column"))
            return got, info.value
        finally:
            await store.close()
            store.pool.close()

    asyncio.run(write())
    # Full frames went to the GPU (4 of the logs as nvcomp-zstd, 2 of the column as Bitcomp); the
    # 123-byte tail of the logs is below min_bytes and stayed cpu-zstd.
    compressed = [b for b in device.batches if b.op is CodecOp.COMPRESS]
    assert sorted(len(f) for b in compressed for f in b.frames) == [FRAME] * 6
    assert sum(len(b.frames) for b in compressed if b.kind is CodecKind.NVCOMP_BITCOMP) == 2
    got, error = asyncio.run(read_on_cpu())
    assert got == logs
    # The store reports the codec's refusal as its own kind of error (the server knows no codec).
    assert error.kind is StoreErrorKind.UNAVAILABLE and "nvcomp-bitcomp" in error.message
    assert isinstance(error.__cause__, CodecError) and error.__cause__.kind.value == "unavailable"
    s3 = translate(error)
    assert (s3.status, s3.code) == (503, "ServiceUnavailable") and "nvcomp-bitcomp" in s3.message


def test_the_engine_is_not_thread_bound_to_one_event_loop():
    """Two event loops in turn (as tests and tools do) share one engine without leaking waiters."""
    device = StandInDevice()
    pool, _, _ = make_pool(device, batch_bytes=100 * KiB, queue_bytes=100 * KiB)
    try:
        for seed in (1, 2):
            payloads = asyncio.run(_compress_all(pool, [text(seed * 10 + i) for i in range(4)]))
            assert len(payloads) == 4
        done = threading.Event()
        results = []

        def in_thread():
            results.append(pool.engine.compress_blocking(GDEFLATE, text(42)))
            done.set()

        threading.Thread(target=in_thread).start()
        assert done.wait(10)
        assert standin_decode(GDEFLATE, results[0], 100 * KiB) == text(42)
    finally:
        pool.close()


async def _compress_all(pool: GpuCodecPool, datas: list[bytes]) -> list[bytes]:
    return await asyncio.gather(*(pool.compress(GDEFLATE, d) for d in datas))


# --- s4 bench gpu, on the stand-in (its figures are not asserted: they are the stand-in's) ---------------


class FixedTimer:
    """Kernel and copy timings that make the report's arithmetic checkable."""

    def kernel_seconds(self, kind, data):
        return len(data) / 4e9, len(data) / 8e9  # 4 and 8 GB/s

    def copy_seconds(self, nbytes):
        return nbytes / 20e9, nbytes / 25e9


def test_bench_gpu_reports_every_codec_and_concurrency():
    import json

    from s4.bench import gpu as bench
    from s4.bench.corpus import Sample

    device = StandInDevice()
    samples = [Sample("text", text(1, 512 * KiB), "generated"), bench.integer_columns(256 * KiB)]
    report = bench.run(
        samples,
        settings=GpuSettings(streams=2, batch_bytes=1 * MiB),
        backend_factory=device.factory,
        probe_device=lambda _d: FOUND,
        timer=FixedTimer(),
        kinds=(ZSTD, GDEFLATE),
        concurrency=(1, 4),
        frame_size=128 * KiB,
        rounds=1,
        cpu_threads=2,
    )
    assert [(r.sample, r.codec, r.concurrency) for r in report.pool] == [
        (s, k, c) for s in ("text", "int-column") for k in ("nvcomp-zstd", "nvcomp-gdeflate") for c in (1, 4)
    ]
    assert all(r.compress_gbps > 0 and r.decompress_gbps > 0 and r.ratio > 1 for r in report.pool)
    assert [round(k.compress_gbps, 6) for k in report.kernels] == [4.0] * 4
    assert (round(report.h2d_gbps, 6), round(report.d2h_gbps, 6)) == (20.0, 25.0)
    assert [c.sample for c in report.cpu] == ["text", "int-column"] and all(c.ratio > 1 for c in report.cpu)
    for s in bench.saturation(report):
        rows = [r for r in report.pool if (r.sample, r.codec) == (s["sample"], s["codec"])]
        assert s["compress_pct_of_kernel"] == pytest.approx(100 * max(r.compress_gbps for r in rows) / 4.0)
    text_out = bench.format_report(report)
    assert "(b) pinned copies: host-to-device 20.00 GB/s" in text_out and "nvcomp-zstd best" in text_out
    assert json.loads(bench.to_json(report))["device"] == FOUND.device
    assert sum(device.batch_sizes(CodecOp.COMPRESS)) > 0


def test_bench_gpu_sweeps_frame_sizes_at_one_concurrency():
    import json

    from s4.bench import gpu as bench
    from s4.bench.corpus import Sample

    samples = [Sample("small", text(2, 64 * KiB), "generated"), Sample("text", text(1, 512 * KiB), "generated")]
    report = bench.run(
        samples,
        settings=GpuSettings(streams=2, batch_bytes=1 * MiB),
        backend_factory=StandInDevice().factory,
        probe_device=lambda _d: FOUND,
        kinds=(ZSTD,),
        concurrency=(1,),
        frame_size=128 * KiB,
        rounds=1,
        cpu_threads=2,
        frame_sweep=(64 * KiB, 256 * KiB, 1 * MiB),
        sweep_kinds=(ZSTD, GDEFLATE),
        sweep_concurrency=3,
    )
    # The largest sample; frames larger than it are left out.
    assert [(r.sample, r.codec, r.concurrency, r.frame_size) for r in report.frames] == [
        ("text", k, 3, size) for k in ("nvcomp-zstd", "nvcomp-gdeflate") for size in (64 * KiB, 256 * KiB)
    ]
    assert all(r.compress_gbps > 0 and r.ratio > 1 for r in report.frames)
    assert "frame-size sweep:" in bench.format_report(report)
    assert [f["frame_size"] for f in json.loads(bench.to_json(report))["frames"]] == [65536, 262144] * 2


def test_bench_gpu_without_a_gpu_says_so_and_measures_nothing():
    import subprocess
    import sys

    if probe().available:
        pytest.skip("this machine has a GPU: the benchmark would run for real")
    r = subprocess.run([sys.executable, "-m", "s4", "bench", "gpu"], capture_output=True, timeout=60)
    assert r.returncode == 3
    assert b"no GPU here, nothing was measured" in r.stderr and r.stdout == b""

import pytest

from s4.codec import CodecError, CodecErrorKind, CodecKind, CodecOp, CodecRegistry, ZstdDictionary
from s4.codec.base import Codec


class Exploding(Codec):
    kind = CodecKind.NVCOMP_BITCOMP
    device = "fake-gpu"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def compress(self, data):
        raise self.error

    def decompress(self, payload, original_size):
        raise self.error


def test_cpu_default_availability_and_reasons():
    registry = CodecRegistry.cpu_default()
    available = {s.kind for s in registry.statuses() if s.available}
    assert available == {CodecKind.PASSTHROUGH, CodecKind.CPU_ZSTD, CodecKind.CPU_GZIP, CodecKind.NVCOMP_ZSTD}
    status = registry.status(CodecKind.NVCOMP_GDEFLATE)
    assert not status.available and "GPU" in status.reason
    assert "dictionary" in registry.status(CodecKind.CPU_ZSTD_DICT).reason


def test_unavailable_codec_is_a_typed_error_naming_it():
    with pytest.raises(CodecError) as info:
        CodecRegistry.cpu_default().decompress(CodecKind.NVCOMP_BITCOMP, b"x", 1)
    assert info.value.kind is CodecErrorKind.UNAVAILABLE
    assert "nvcomp-bitcomp" in str(info.value) and "GPU" in str(info.value)


def test_telemetry_reports_every_call():
    seen = []
    registry = CodecRegistry.cpu_default(telemetry=seen.append)
    data = b"abc" * 10_000
    payload, t1 = registry.compress_with_telemetry(CodecKind.CPU_ZSTD, data)
    out, t2 = registry.decompress_with_telemetry(CodecKind.CPU_ZSTD, payload, len(data))
    assert out == data
    assert seen == [t1, t2]
    assert (t1.codec, t1.device, t1.op, t1.bytes_in, t1.bytes_out, t1.oom) == (
        CodecKind.CPU_ZSTD,
        "cpu",
        CodecOp.COMPRESS,
        len(data),
        len(payload),
        False,
    )
    assert (t2.op, t2.bytes_in, t2.bytes_out) == (CodecOp.DECOMPRESS, len(payload), len(data))
    assert t1.seconds >= 0 and t1.throughput_bytes_per_sec >= 0


def test_backend_exceptions_become_typed_errors_with_oom_flagged():
    seen = []
    registry = CodecRegistry(telemetry=seen.append)
    registry.register(Exploding(RuntimeError("CUDA out of memory")))
    with pytest.raises(CodecError) as info:
        registry.compress(CodecKind.NVCOMP_BITCOMP, b"x")
    assert info.value.kind is CodecErrorKind.OUT_OF_MEMORY
    assert seen[-1].oom and seen[-1].device == "fake-gpu"

    registry.register(Exploding(ValueError("kernel launch failed")))
    with pytest.raises(CodecError) as info:
        registry.decompress(CodecKind.NVCOMP_BITCOMP, b"x", 1)
    assert info.value.kind is CodecErrorKind.BACKEND and "kernel launch failed" in str(info.value)
    assert not seen[-1].oom


def test_a_broken_telemetry_hook_does_not_fail_the_call():
    def broken(_):
        raise RuntimeError("metrics down")

    registry = CodecRegistry.cpu_default(telemetry=broken)
    assert registry.compress(CodecKind.PASSTHROUGH, b"abc") == b"abc"


def test_with_dictionary_adds_the_dict_codec_and_shares_the_rest():
    base = CodecRegistry.cpu_default()
    d = ZstdDictionary(b"some dictionary content " * 100)
    view = base.with_dictionary(d)
    payload = view.compress(CodecKind.CPU_ZSTD_DICT, b"some dictionary content")
    assert view.decompress(CodecKind.CPU_ZSTD_DICT, payload, 23) == b"some dictionary content"
    assert not base.is_available(CodecKind.CPU_ZSTD_DICT)
    assert view.get(CodecKind.CPU_ZSTD) is base.get(CodecKind.CPU_ZSTD)
    assert base.with_dictionary(d).get(CodecKind.CPU_ZSTD_DICT) is view.get(CodecKind.CPU_ZSTD_DICT)


def test_register_and_mark_unavailable():
    registry = CodecRegistry.cpu_default()
    registry.mark_unavailable(CodecKind.CPU_GZIP, "disabled by config")
    assert registry.status(CodecKind.CPU_GZIP).reason == "disabled by config"
    registry.register(Exploding(RuntimeError()))
    assert registry.status(CodecKind.NVCOMP_BITCOMP).device == "fake-gpu"

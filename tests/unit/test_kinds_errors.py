import pytest

from s4.codec import CodecError, CodecErrorKind, CodecKind, looks_like_oom

FROZEN = {
    0: "passthrough",
    1: "cpu-zstd",
    2: "nvcomp-zstd",
    3: "nvcomp-bitcomp",
    4: "nvcomp-gans",
    5: "dietgpu-ans",
    6: "nvcomp-gdeflate",
    7: "cpu-gzip",
    8: "cpu-zstd-dict",
}


def test_ids_and_names_are_the_frozen_wire_values():
    assert {int(k): k.wire_name for k in CodecKind} == FROZEN
    for codec_id, name in FROZEN.items():
        assert CodecKind.from_id(codec_id) is CodecKind.from_name(name)
        assert str(CodecKind.from_id(codec_id)) == name


def test_name_parsing_is_case_and_space_tolerant():
    assert CodecKind.from_name(" CPU-Zstd ") is CodecKind.CPU_ZSTD


@pytest.mark.parametrize("bad", ["zstd", "cpu_zstd", "", "nvcomp-lz4"])
def test_unknown_names_are_clear_errors(bad):
    with pytest.raises(CodecError) as info:
        CodecKind.from_name(bad)
    assert info.value.kind is CodecErrorKind.CORRUPT
    assert repr(bad) in str(info.value) and "cpu-zstd" in str(info.value)


@pytest.mark.parametrize("bad", [9, 255, 2**32 - 1, -1])
def test_unknown_ids_are_clear_errors(bad):
    with pytest.raises(CodecError, match=f"unknown codec id {bad}"):
        CodecKind.from_id(bad)


class OutOfMemoryError(Exception):
    """Stands in for cupy.cuda.memory.OutOfMemoryError, matched by name."""


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        OutOfMemoryError("Out of memory allocating 1,048,576 bytes"),
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("cudaErrorMemoryAllocation"),
        RuntimeError("nvcompStatusOutOfMemory"),
        OSError(12, "Cannot allocate memory"),
        CodecError.out_of_memory("device full"),
    ],
)
def test_looks_like_oom_recognises_each_library(error):
    assert looks_like_oom(error)


def test_looks_like_oom_follows_the_cause_chain():
    try:
        try:
            raise MemoryError
        except MemoryError as inner:
            raise RuntimeError("batch failed") from inner
    except RuntimeError as outer:
        assert looks_like_oom(outer)


@pytest.mark.parametrize(
    "error", [ValueError("bad input"), RuntimeError("illegal memory access"), CodecError.corrupt("CRC mismatch")]
)
def test_looks_like_oom_rejects_other_failures(error):
    assert not looks_like_oom(error)

"""The gateway keeps big freed buffers in glibc's heap (s4.gateway._tune_malloc), unless told otherwise."""

import types

import pytest

from s4 import gateway


class _Libc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


def test_thresholds_are_set_above_the_largest_frame_and_the_arenas_bounded(monkeypatch):
    libc = _Libc()
    monkeypatch.setattr(gateway, "ctypes", types.SimpleNamespace(CDLL=lambda name: libc))
    for name in [n for n in gateway.os.environ if n.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    gateway._tune_malloc()
    assert dict(libc.calls) == {
        gateway.M_MMAP_THRESHOLD: 32 * 1024 * 1024,
        gateway.M_TRIM_THRESHOLD: 32 * 1024 * 1024,
        gateway.M_ARENA_MAX: 2,
    }


def test_an_operators_malloc_settings_win(monkeypatch):
    def refuse(name):
        pytest.fail("mallopt called although MALLOC_ARENA_MAX is set")

    monkeypatch.setattr(gateway, "ctypes", types.SimpleNamespace(CDLL=refuse))
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    gateway._tune_malloc()


def test_no_glibc_is_no_error(monkeypatch):
    def missing(name):
        raise OSError("libc.so.6: cannot open shared object file")

    monkeypatch.setattr(gateway, "ctypes", types.SimpleNamespace(CDLL=missing))
    for name in [n for n in gateway.os.environ if n.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    gateway._tune_malloc()

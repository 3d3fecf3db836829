"""s4 serve fixes glibc's malloc thresholds unless the operator set them (s4/allocator.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from s4 import allocator, gateway
from s4.allocator import (
    ARENA_MAX,
    M_ARENA_MAX,
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    MMAP_THRESHOLD,
    TRIM_THRESHOLD,
    tune_allocator,
)
from s4.config import load_config

SETTINGS = [(M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX)]


class _Libc:
    def __init__(self, answer: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.answer


def test_thresholds_and_arena_count_are_set():
    libc = _Libc()
    assert tune_allocator(env={}, libc=libc) is True
    assert libc.calls == SETTINGS


def test_serving_leaves_the_settings_as_the_allocator_made_them(monkeypatch):
    """What gateway.run starts with is this module's tuning, set once: an older second tuning in
    s4/gateway.py ran after it and silently replaced its values with its own."""
    libc = _Libc()
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *args: libc)
    for name in [n for n in allocator.os.environ if n.startswith("MALLOC_") or n == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(name)

    def serve_nothing(coroutine):
        coroutine.close()

    monkeypatch.setattr(gateway.asyncio, "run", serve_nothing)
    monkeypatch.setattr(gateway.logging, "basicConfig", lambda **kwargs: None)
    assert gateway.run(load_config(env={}, overrides={"workers": 1})) == 0
    assert libc.calls == SETTINGS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MALLOC_MMAP_THRESHOLD_", "1"),
        ("MALLOC_TRIM_THRESHOLD_", "1"),
        ("MALLOC_TOP_PAD_", "1"),
        ("MALLOC_ARENA_MAX", "8"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1"),
    ],
)
def test_an_operators_own_setting_wins(name, value):
    libc = _Libc()
    assert tune_allocator(env={name: value}, libc=libc) is False
    assert libc.calls == []


def test_tunables_about_other_things_do_not_stop_it():
    libc = _Libc()
    assert tune_allocator(env={"GLIBC_TUNABLES": "glibc.pthread.rseq=0"}, libc=libc) is True
    assert len(libc.calls) == 3


def test_a_refused_value_is_reported():
    assert tune_allocator(env={}, libc=_Libc(answer=0)) is False


def test_a_c_library_without_mallopt_is_left_alone():
    assert tune_allocator(env={}, libc=object()) is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_this_process_c_library_takes_the_values():
    """Run in a child: the thresholds stay set for the rest of a process."""
    code = "import sys; from s4.allocator import tune_allocator; sys.exit(0 if tune_allocator(env={}) else 1)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

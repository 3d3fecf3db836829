"""GPU tests run only where nvCOMP finds a CUDA device; elsewhere each is skipped with the reason."""

from __future__ import annotations

import functools

import pytest

from s4.codec.gpu.nvcomp import NvcompProbe, probe


@functools.cache
def _found() -> NvcompProbe:
    return probe()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("gpu") is None:
            continue
        found = _found()
        if not found.available:
            item.add_marker(pytest.mark.skip(reason=f"no CUDA device / nvidia.nvcomp not importable: {found.reason}"))

"""Multipart details of issue 13 below the HTTP layer: completion lists, ListParts cost, the leftover sweep."""

from __future__ import annotations

import pytest

from s4.store.base import PartInfo, StoreError
from s4.store.multipart import validate_completion

MiB = 1024 * 1024


# == completing with a part number listed twice ==========================================================


def _part(number: int, etag: str, size: int = 5 * MiB) -> PartInfo:
    return PartInfo(number, size, etag, None)  # type: ignore[arg-type]


def test_a_part_number_repeated_in_a_row_is_checked_by_its_last_etag():
    uploaded = {1: _part(1, "a" * 32), 2: _part(2, "c" * 32)}
    chosen = validate_completion([(1, "b" * 32), (1, "a" * 32), (2, "c" * 32)], uploaded)
    assert [(p.part_number, p.etag) for p in chosen] == [(1, "a" * 32), (2, "c" * 32)]
    with pytest.raises(StoreError) as info:
        validate_completion([(1, "a" * 32), (1, "b" * 32)], uploaded)
    assert info.value.code == "InvalidPart"
    with pytest.raises(StoreError) as info:  # not in a row: out of order
        validate_completion([(1, "a" * 32), (2, "c" * 32), (1, "a" * 32)], uploaded)
    assert info.value.code == "InvalidPartOrder"

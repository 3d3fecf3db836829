"""A staged part's frame index in its metadata: what is written is read back, anything else is not trusted."""

from __future__ import annotations

import pytest

from s4.codec import IndexEntry
from s4.store.compressing.staging import MAX_PART_INDEX, decode_part_index, encode_part_index

MiB = 1024 * 1024


def _entries(*frames: tuple[int, int]) -> tuple[IndexEntry, ...]:
    out = []
    original = stored = 0
    for frame_original, frame_stored in frames:
        out.append(IndexEntry(original, frame_original, stored, frame_stored))
        original += frame_original
        stored += frame_stored
    return tuple(out)


def test_round_trip_of_an_8_mib_part():
    entries = _entries((4 * MiB, 1_012_345), (4 * MiB, 998_001))
    text = encode_part_index(entries)
    assert text == "4194304:1012345,4194304:998001"
    assert decode_part_index(text, 2, 8 * MiB, 1_012_345 + 998_001) == entries


def test_a_128_mib_part_of_4_mib_frames_fits_and_more_frames_do_not():
    fits = _entries(*[(4 * MiB, 4 * MiB + 28)] * 32)
    text = encode_part_index(fits)
    assert text is not None and len(text) <= MAX_PART_INDEX
    assert decode_part_index(text, 32, 128 * MiB, 32 * (4 * MiB + 28)) == fits
    assert encode_part_index(_entries(*[(4 * MiB, 4 * MiB + 28)] * 64)) is None


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "4194304:1012345",  # one frame where the part has two
        "4194304:1012345,4194304:998001,1:29",  # three
        "4194304:1012345,4194303:998001",  # original sizes that do not add up
        "4194304:1012345,4194304:998000",  # stored sizes that do not add up
        "4194304:1012345,4194304:",
        "4194304:1012345;4194304:998001",
        "4194304:1012345,4194304:998001,",
        "4194304:1012345,0:0,4194304:998001",
        "4194304:1012345,4194304:-998001",
        "4194304:1012345,\uff14194304:998001",  # a fullwidth 4: str.isdigit() and int() take it
        "x" * (MAX_PART_INDEX + 1),
    ],
)
def test_a_value_that_does_not_describe_the_part_is_not_used(text):
    assert decode_part_index(text, 2, 8 * MiB, 1_012_345 + 998_001) is None

"""rechunk: the PUT path's cut of a body into frames, each byte copied once."""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from s4.codec.stream import rechunk


async def _source(chunks):
    for chunk in chunks:
        yield chunk


def _pieces(chunks, size: int) -> list[bytes]:
    async def collect():
        return [piece async for piece in rechunk(_source(chunks), size)]

    return asyncio.run(collect())


@given(st.lists(st.binary(max_size=50), max_size=12), st.integers(1, 40))
@settings(max_examples=200)
def test_pieces_are_exactly_the_size_but_the_last_and_keep_every_byte(chunks, size):
    pieces = _pieces(chunks, size)
    assert b"".join(pieces) == b"".join(chunks)
    assert all(len(p) == size for p in pieces[:-1])
    assert all(0 < len(p) <= size for p in pieces)
    assert all(type(p) is bytes for p in pieces)


def test_a_chunk_that_is_a_whole_piece_is_passed_on_without_a_copy():
    chunk = bytes(range(16))
    pieces = _pieces([chunk, chunk], 16)
    assert pieces[0] is chunk and pieces[1] is chunk


def test_a_producer_reusing_its_bytearray_does_not_change_pieces_held():
    buffer = bytearray(b"a" * 6)

    async def source():
        for fill in (b"a", b"b", b"c"):
            buffer[:] = fill * 6
            yield buffer

    async def collect():
        return [piece async for piece in rechunk(source(), 4)]

    assert asyncio.run(collect()) == [b"aaaa", b"aabb", b"bbbb", b"cccc", b"cc"]

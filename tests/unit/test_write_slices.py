"""write_within hands a response to the transport in slices sized for the connection (s4/server/limits.py)."""

from __future__ import annotations

import asyncio

import pytest

from s4.server.limits import BODY_BYTES_SENT, PLAIN_WRITE_SLICE, TLS_WRITE_SLICE, write_within


class _Transport:
    def __init__(self, tls: bool) -> None:
        self._extra = {"ssl_object": object()} if tls else {}

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


class _Request(dict):
    def __init__(self, tls: bool) -> None:
        super().__init__()
        self.transport = _Transport(tls)


class _Response:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, data: memoryview) -> None:
        self.writes.append(bytes(data))


@pytest.mark.parametrize(("tls", "slice_size"), [(True, TLS_WRITE_SLICE), (False, PLAIN_WRITE_SLICE)])
def test_a_frame_goes_out_in_slices_of_the_connections_size(tls, slice_size):
    """Over TLS a slice's ciphertext is what a slow reader holds; over plain TCP larger slices cost less."""
    frame = bytes(range(256)) * (4 * 1024 * 1024 // 256 + 7)
    request, response = _Request(tls), _Response()
    asyncio.run(write_within(request, response, frame, timeout=10))
    assert b"".join(response.writes) == frame
    assert max(map(len, response.writes)) == slice_size
    assert len(response.writes) == -(-len(frame) // slice_size)
    assert request[BODY_BYTES_SENT] == len(frame)

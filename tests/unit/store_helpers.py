"""Helpers for driving an ObjectStore from plain pytest functions (no pytest-asyncio here)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

from s4.store.base import ObjectStream


async def body(*chunks: bytes, delay: float = 0.0) -> AsyncIterator[bytes]:
    """A request body: the chunks in order, optionally pausing between them like a slow client."""
    for chunk in chunks:
        if delay:
            await asyncio.sleep(delay)
        yield chunk


async def failing_body(*chunks: bytes, error: Exception | None = None) -> AsyncIterator[bytes]:
    """Yields every chunk, then raises: a body whose digest turns out wrong at its very end."""
    for chunk in chunks:
        yield chunk
    raise error or ValueError("digest mismatch")


async def read_all(stream: ObjectStream) -> bytes:
    try:
        return b"".join([chunk async for chunk in stream.body])
    finally:
        await stream.aclose()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def object_files(data_dir: Path) -> list[Path]:
    return files_under(data_dir / "objects")


def temp_files(data_dir: Path) -> list[Path]:
    return files_under(data_dir / "tmp")

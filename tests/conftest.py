"""Shared test fixtures: the S4 gateway vectors from ../shared, and a CPU registry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from s4.codec import ChunkManifest, CodecRegistry, ZstdDictionary

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("S4_FIXTURES", REPO.parent / "shared" / "fixtures" / "s4-gateway"))
GATEWAY_OBJECTS = ["text_zstd", "multi_zstd", "parquet_zstd", "text_gzip", "dict_event", "raw"]


@pytest.fixture
def fixtures_dir() -> Path:
    if not (FIXTURES / "README.md").is_file():
        pytest.skip(f"S4 gateway fixtures not found at {FIXTURES} (set S4_FIXTURES or check out ../shared)")
    return FIXTURES


def load_meta(fixtures: Path, name: str) -> dict[str, str]:
    return json.loads((fixtures / f"{name}.meta.json").read_text())


def gateway_dictionary(fixtures: Path) -> ZstdDictionary:
    return ZstdDictionary((fixtures / "zstd_dict.bin").read_bytes())


@pytest.fixture
def registry() -> CodecRegistry:
    return CodecRegistry.cpu_default()


def manifest_of(fixtures: Path, name: str) -> ChunkManifest | None:
    return ChunkManifest.from_metadata(load_meta(fixtures, name))

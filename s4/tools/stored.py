"""Loading a stored body's companions from disk: its metadata file and dictionary."""

from __future__ import annotations

import json
from pathlib import Path

from s4.codec import ChunkManifest, CodecError, CodecRegistry, ZstdDictionary
from s4.codec.format.frame import FRAME_MAGIC, PADDING_MAGIC

READ_CHUNK = 1024 * 1024


class ToolError(Exception):
    """A one-line reason the tool stops, with its exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def load_metadata(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ToolError(f"cannot read metadata {path}: {exc}", 2) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ToolError(f"metadata {path} must be a flat JSON object of strings", 2)
    return data


def load_manifest(meta_path: Path | None) -> ChunkManifest | None:
    if meta_path is None:
        return None
    return ChunkManifest.from_metadata(load_metadata(meta_path))


def registry_for(manifest: ChunkManifest | None, dict_path: Path | None) -> CodecRegistry:
    """The CPU registry, with the dictionary bound when one is given (and checked against the manifest)."""
    registry = CodecRegistry.cpu_default()
    if dict_path is None:
        if manifest is not None and manifest.dict_id is not None:
            raise ToolError(
                f"the object needs zstd dictionary {manifest.dict_id} (stored at .s4dict/{manifest.dict_id}):"
                " pass it with --dict",
                3,
            )
        return registry
    try:
        dictionary = ZstdDictionary(dict_path.read_bytes())
    except OSError as exc:
        raise ToolError(f"cannot read dictionary {dict_path}: {exc}", 2) from None
    if manifest is not None and manifest.dict_id and manifest.dict_id != dictionary.dict_id:
        raise ToolError(f"dictionary {dict_path} has id {dictionary.dict_id}, the object needs {manifest.dict_id}")
    return registry.with_dictionary(dictionary)


def looks_framed(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) in (FRAME_MAGIC, PADDING_MAGIC)


def read_chunks(path: Path):
    try:
        with path.open("rb") as f:
            while chunk := f.read(READ_CHUNK):
                yield chunk
    except OSError as exc:
        raise ToolError(f"cannot read {path}: {exc}", 2) from None


def exit_status(error: CodecError) -> int:
    """1 for corrupt data, 3 when this node cannot run the codec (the object may be fine)."""
    return 1 if error.is_corrupt else 3

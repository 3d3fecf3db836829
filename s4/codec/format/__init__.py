"""The stored format (FORMAT.md): codec ids, the chunk manifest, S4F2 frames, FCG1 containers, S4IX indexes, CRC32C."""

"""Codecs that run on the CPU: passthrough, zstd, gzip, zstd with a dictionary, and nvcomp-zstd's chunked zstd."""

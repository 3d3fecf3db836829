"""Benchmarks behind ``s4 bench``: figures are measured here, never in timed unit tests."""

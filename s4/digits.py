"""Decimal numbers in text a client or a store wrote: ASCII digits only, of bounded length.

``str.isdigit`` also takes '²' and other Unicode digits, which ``int`` refuses (an unexpected
ValueError, answered as a 500) or reads (Arabic-Indic digits); and ``int`` refuses strings of more
than 4300 digits. Every layer parses such numbers (query parameters, headers, our own metadata), so
they share this one check instead of each writing it again.
"""

from __future__ import annotations


def decimal(text: str, max_digits: int = 18) -> int | None:
    """``text`` as a non-negative integer when it is 1 to ``max_digits`` ASCII digits, else None."""
    if text.isascii() and text.isdigit() and len(text) <= max_digits:
        return int(text)
    return None

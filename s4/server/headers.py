"""Request headers as the signature, payload and checksum checks all read them.

One module so the body's verification (``body/``) and authentication (``auth/``) agree on
what a repeated header or an odd-case name means, without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping


def collect_headers(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lower-case name -> every value, in order.

    Iterating items() rather than looking names up keeps repeated headers (a multidict
    yields each one) and works the same for plain dicts of any case.
    """
    collected: dict[str, list[str]] = {}
    for name, value in headers.items():
        collected.setdefault(name.lower(), []).append(value)
    return collected


def header_value(collected: dict[str, list[str]], name: str) -> str | None:
    """One header's value from collect_headers output, repeats joined by ',' as HTTP allows."""
    values = collected.get(name)
    return None if values is None else ",".join(values)

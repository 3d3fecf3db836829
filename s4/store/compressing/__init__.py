"""The S4 format as a store wrapper: compressed PUT and ranged GET, sidecars, multipart staging, reserved names.

``store`` is the wrapper itself; it delegates encoding (``encoding``), reading stored bytes
(``reads``), frame indexes (``sidecars``) and multipart uploads (``staging``), which share
only those modules and the client's view of an object (``view``), never the wrapper.
"""

from s4.store.compressing.store import CompressingStore

__all__ = ["CompressingStore"]

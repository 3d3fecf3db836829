"""Offline tools on stored bodies: what ``s4 inspect``, ``s4 decode`` and ``s4 index`` run."""

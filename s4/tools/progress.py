"""Progress of the long offline commands (estimate, verify, migrate), on a terminal only.

tqdm draws the bar on stderr and stays silent when stderr is not a terminal (``disable=None``),
so a command piped into a file or run by a test prints its report and nothing else.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def bar(total: int | None, unit: str, description: str, *, enabled: bool | None = None) -> Any:
    """A progress bar of ``total`` ``unit``s (bytes scale as KiB, MiB...), updated with ``.update(n)``.

    ``enabled`` None: only on a terminal; False: never (``--no-progress``, ``--json``).
    """
    return tqdm(
        total=total,
        unit=unit,
        unit_scale=unit == "B",
        unit_divisor=1024,
        desc=description,
        file=sys.stderr,
        disable=None if enabled is None else not enabled,
        dynamic_ncols=True,
        leave=False,
    )

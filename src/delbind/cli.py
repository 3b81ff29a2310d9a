"""What every script does around its task: errors a user can fix as one line, not a traceback wall."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from delbind.errors import USER_ERRORS

T = TypeVar("T")
log = logging.getLogger("delbind")


def run_task(task: Callable[..., T], *args: Any, in_sweep: bool = False) -> T:
    """Run ``task``; a user error (bad input, a missing file or asset) is logged as one line and exits 2.

    In a sweep the error is re-raised instead: Hydra records the failed job and the sweep goes on.
    """
    try:
        return task(*args)
    except USER_ERRORS as e:
        log.error("%s: %s", type(e).__name__, e)
        if in_sweep:
            raise
        sys.exit(2)

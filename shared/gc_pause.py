"""Pausing Python's cyclic garbage collector around allocation-heavy batch steps."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block. Decoding a page or scoring a chunk of
    unit-periods allocates ~10⁵ acyclic objects, and the collections they trigger (rescanning
    every live object, more of them as the batch's results pile up) cost a third or more of the
    step. Reference counting still frees everything; collection resumes afterwards. GC state is
    process-wide: a block nested in another, or overlapping one in another thread, leaves it
    as the outer block decides."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

"""Background loops the app factory starts after boot and stops on shutdown.

`stop()` only sets a flag: the pass in hand finishes (and commits) before `run()` returns, which
is what lets SIGTERM drain an instance without losing or repeating work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("cchc.workers")


async def wait_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep up to `seconds`, waking at once when `stopping` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


class PeriodicWorker:
    """Runs `tick()` every `interval` seconds until stopped; a failed tick is logged and the
    next one tries again (every tick is its own transaction, so nothing is half-done)."""

    name = "worker"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> object:
        raise NotImplementedError

    async def close(self) -> None:
        """Release resources once the loop has ended."""

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed; retrying next interval", self.name)
            await wait_or_stop(self._stopping, self.interval)
        await self.close()

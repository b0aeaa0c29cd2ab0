"""Sessions past their retention are swept: their trace, service records and tokens deleted from the store.

A test session is served for ``session_ttl`` seconds after it was created, then answers 410 ``session-expired``;
its trace stays exportable ``session_retention`` seconds more (the harness exports it as the scenario ends), then a
periodic task of every served sandbox deletes it, in batches (one transaction each, a few hundred sessions), so that
a store shared by a wave's vendors does not grow with every session ever opened.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sandbox.config import SandboxConfig
from sandbox.store import SWEEP_BATCH, Store

log = logging.getLogger("usine.sandbox.sweep")


def sweep_once(store: Store, config: SandboxConfig, now: float | None = None) -> int:
    """Delete every session created before ``now - session_ttl - session_retention``, batch by batch; how many."""
    before = (time.time() if now is None else now) - config.session_ttl - config.session_retention
    swept = 0
    while True:
        count = store.sweep_sessions(before, SWEEP_BATCH)
        swept += count
        if count < SWEEP_BATCH:
            return swept


async def sweep_periodically(store: Store, config: SandboxConfig) -> None:
    """:func:`sweep_once` as the sandbox starts, then every ``sweep_seconds``, in a thread (a batch holds the SQLite
    store's lock a moment): a sandbox restarted more often than that (one started for each CI run on a kept state
    folder) sweeps all the same. A sweep that fails (the database restarting, a locked or full disk) is logged and
    tried again at the next period: the task never ends but cancelled (the server's shutdown awaits it before
    sealing the events)."""
    while True:
        try:
            await asyncio.to_thread(sweep_once, store, config)
        except Exception:  # what was swept stays swept (a batch is one transaction); the rest waits for the next
            log.exception("sweeping the sessions past their retention failed; tried again in %g s",
                          config.sweep_seconds)
        await asyncio.sleep(config.sweep_seconds)

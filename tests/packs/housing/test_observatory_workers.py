"""The observatory files a DPE once across worker processes sharing a PostgreSQL store (``--workers N``)."""

from __future__ import annotations

import threading
from contextlib import suppress
from types import SimpleNamespace
from typing import Any

from sandbox.packs.housing.observatory import COLLECTION, IDENTITIES, PROD, _file
from sandbox.store import PostgresStore
from tests.sandbox.test_workers import at_once


class Racing:
    """One worker's store whose read of a DPE's identity waits (a second at most) for the other worker's same read:
    the two filings both look before either writes, unless something keeps them apart."""

    def __init__(self, store: PostgresStore, barrier: threading.Barrier) -> None:
        self.store, self.barrier = store, barrier

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def get_record(self, collection: str, scope: str, key: str) -> Any:
        found = self.store.get_record(collection, scope, key)
        if collection == IDENTITIES:
            with suppress(threading.BrokenBarrierError):
                self.barrier.wait(timeout=1)
        return found


def test_the_same_dpe_filed_on_two_workers_at_once_is_filed_once(postgresql_url: str) -> None:
    """QA (services): the observatory's check-then-file (is this DPE's identity known? else count, number, write) ran
    under no lock. One process never interleaves it (no await inside), but two workers do: the same DPE sent twice
    at once (a retry after a timeout) was filed twice — two numbers, and in production two paid data-received events
    for one DPE. Filing holds the store's lock of the scope, which every worker process takes."""
    stores = PostgresStore(postgresql_url), PostgresStore(postgresql_url)  # two workers' pools
    barrier = threading.Barrier(2)
    try:
        def file(i: int) -> dict[str, Any]:
            request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(store=Racing(stores[i], barrier))))
            values = {"identity": "one-dpe", "energy_class": "D", "rnb_id": "ABCDEFGH1234"}
            return _file(request, PROD, b"<dpe/>", values, [], f"inst_{i}")  # type: ignore[arg-type]

        answers = at_once(2, file)
        assert len(stores[0].list_records(COLLECTION, PROD)) == 1
        assert answers[0]["numero_dpe"] == answers[1]["numero_dpe"]
        assert sorted(bool(a.get("duplicate")) for a in answers) == [False, True]
    finally:
        for store in stores:
            store.close()

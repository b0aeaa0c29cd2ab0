"""A filed DPE's number is drawn from the scope's count, kept in one record: filing does not read every DPE filed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sandbox.packs.housing.observatory import COLLECTION, COUNTS, PROD, _file
from sandbox.store import Store


class Counting:
    """A store that counts its reads of whole collections (``list_records``)."""

    def __init__(self, store: Store) -> None:
        self.store, self.listed = store, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def list_records(self, collection: str, scope: str) -> list[dict[str, Any]]:
        self.listed += 1
        return self.store.list_records(collection, scope)


def file(store: Any, identity: str) -> dict[str, Any]:
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(store=store)))
    values = {"identity": identity, "energy_class": "C", "rnb_id": "ABCDEFGH1234"}
    return _file(request, PROD, f"<dpe id='{identity}'/>".encode(), values, [], "inst_1")  # type: ignore[arg-type]


def test_numbers_come_from_a_kept_count_not_from_reading_every_dpe(tmp_path: Path) -> None:
    """QA (services): each filing counted the filed DPEs by reading them all (production is one scope: every DPE ever
    filed, documents included), so a filing's cost grew with the observatory's history."""
    store = Counting(Store(tmp_path / "sandbox.sqlite3"))
    try:
        numbers = [file(store, f"dpe-{i}")["numero_dpe"] for i in range(5)]
        assert len(set(numbers)) == 5 and [n[5:12] for n in numbers] == [f"{i:07d}" for i in range(1, 6)]
        assert store.listed == 1  # once, for a store without the count (filed before it was kept)
        assert store.get_record(COUNTS, PROD, "filed") == {"count": 5}
        assert file(store, "dpe-2")["duplicate"] is True and store.get_record(COUNTS, PROD, "filed") == {"count": 5}
    finally:
        store.store.close()


def test_a_store_filed_before_the_count_was_kept_goes_on_from_its_records(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandbox.sqlite3")
    try:
        for i in range(1, 4):  # three DPEs filed by an earlier version: records, no count
            store.put_record(COLLECTION, PROD, f"old-{i}", {"numero_dpe": f"old-{i}"})
        assert file(store, "new")["numero_dpe"][5:12] == "0000004"
        assert store.get_record(COUNTS, PROD, "filed") == {"count": 4}
    finally:
        store.close()

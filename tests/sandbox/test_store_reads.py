"""The store's per-request shortcuts mean what the plain calls mean, on SQLite and on PostgreSQL.

* ``session_and_token`` (one statement) returns what ``get_session`` and ``get_token`` return, for every
  combination of a known or unknown session and a known, unknown, expired or absent token;
* ``batch`` (one commit for several writes) leaves every write committed, also when the block raises;
* ``session_and_token`` parses a session's text once: requests that read the same text share one read-only value,
  and a change written through any handle (another worker's) is read at once;
* ``append_exchange_text`` (the exchange's text as the recording middleware wrote it) stores what
  ``append_exchange`` stores, with the next number.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.store import PostgresStore, Store, dump_own


def test_session_and_token_reads_what_the_two_reads_read(stores: tuple[Store, Store]) -> None:
    store, _ = stores
    store.put_session({"id": "ses_a", "state": "open", "fixtures": {"n": [1, "é"]}, "faults": {}})
    store.put_token("t" * 43, "access", "ses_a", {"sub": "810000000001", "scope": ["openid"]}, ttl=60)
    store.put_token("x" * 43, "access", "ses_b", {}, ttl=-1)  # expired, another session's
    for sid in ("ses_a", "ses_unknown"):
        for token in ("t" * 43, "x" * 43, "u" * 43, None):
            session, record = store.session_and_token(sid, token)
            assert session == store.get_session(sid)
            assert record == (store.get_token(token) if token else None)
    assert store.session_and_token("ses_a", "x" * 43)[1] == {"kind": "access", "scope": "ses_b", "expired": True}


def test_a_session_read_again_is_the_same_read_only_value_until_any_handle_changes_it(
        stores: tuple[Store, Store]) -> None:
    store, other = stores
    store.put_session({"id": "ses_a", "state": "open", "fixtures": {"patients": [{"ins": "1"}]}, "faults": {}})
    first, _ = store.session_and_token("ses_a", None)
    again, _ = store.session_and_token("ses_a", None)
    assert first is again and first == store.get_session("ses_a")
    with pytest.raises(TypeError, match="read-only"):
        first["fixtures"]["patients"][0]["ins"] = "2"  # type: ignore[index]
    with pytest.raises(TypeError, match="read-only"):
        first["faults"].update({"dmp": {}})  # type: ignore[index]
    other.update_session("ses_a", lambda s: s.update(faults={"dmp": {"unavailable": 1}}))  # another worker
    changed, _ = store.session_and_token("ses_a", None)
    assert changed is not first and changed["faults"] == {"dmp": {"unavailable": 1}}
    assert first["faults"] == {}  # what an earlier request holds does not change under it
    store.update_session("ses_a", lambda s: s.update(faults={}))  # the first text again: equal, and read-only
    assert store.session_and_token("ses_a", None)[0] == first


def test_a_batch_commits_every_write_once_also_when_it_raises(stores: tuple[Store, Store]) -> None:
    store, other = stores
    with store.batch():
        store.put_record("docs", "ses_a", "1", {"n": 1})
        store.put_record("docs", "ses_a", "2", {"n": 2})
    with pytest.raises(RuntimeError), store.batch():
        store.put_record("docs", "ses_a", "3", {"n": 3})
        raise RuntimeError("a problem after a write")
    with store.batch(), store.batch():  # nested: the outer one commits
        store.put_record("docs", "ses_a", "4", {"n": 4})
    assert [r["n"] for r in other.list_records("docs", "ses_a")] == [1, 2, 3, 4]
    store.put_record("docs", "ses_a", "5", {"n": 5})  # and the store is out of the transaction afterwards
    assert [r["n"] for r in other.list_records("docs", "ses_a")] == [1, 2, 3, 4, 5]


def test_appended_exchanges_keep_their_members_and_take_the_next_number(stores: tuple[Store, Store]) -> None:
    store, other = stores
    store.put_session({"id": "ses_a", "state": "open"})  # an exchange is a stored session's only
    store.put_session({"id": "ses_b", "state": "open"})  # an exchange is a stored session's only
    exchanges = [{"kind": "http", "time": "2027-01-01T00:00:00.000Z", "request": {"path": "/s/x/dmp", "é": "\u2028"},
                  "response": {"status": 201}, "n": 1.5},
                 {"kind": "note", "data": {"seq": "not the trace's", "list": [1, None, True]}}]
    assert [store.append_exchange("ses_a", e, checked=True) for e in exchanges] == [1, 2]
    assert other.append_exchange("ses_a", {"kind": "note", "data": {}}) == 3
    assert store.append_exchange("ses_b", {"kind": "note"}) == 1
    assert other.exchanges("ses_a") == [{"seq": 1, **exchanges[0]}, {"seq": 2, **exchanges[1]},
                                        {"seq": 3, "kind": "note", "data": {}}]
    assert list(other.exchanges("ses_a")[0]) == ["seq", *exchanges[0]]


def test_an_exchange_appended_as_its_text_is_stored_as_the_exchange_itself(stores: tuple[Store, Store]) -> None:
    store, other = stores
    store.put_session({"id": "ses_a", "state": "open"})  # an exchange is a stored session's only
    store.put_session({"id": "ses_b", "state": "open"})  # an exchange is a stored session's only
    exchange = {"kind": "http", "request": {"path": "/s/x/dmp", "é": "\u2028", "q": 'say "hi"'}, "n": 1.5, "seq_": 1}
    assert store.append_exchange("ses_a", exchange, checked=True) == 1
    assert store.append_exchange_text("ses_a", dump_own(exchange)) == 2
    assert other.append_exchange_text("ses_a", dump_own({"kind": "note"})) == 3
    assert other.append_exchange_text("ses_b", dump_own(exchange)) == 1
    first, second, third = other.exchanges("ses_a")
    assert first == {"seq": 1, **exchange} and list(first) == ["seq", *exchange]
    assert second == {"seq": 2, **exchange} and list(second) == ["seq", *exchange]
    assert third == {"seq": 3, "kind": "note"}


def test_a_new_record_goes_after_the_collections_last_and_a_known_key_keeps_its_place(
        stores: tuple[Store, Store]) -> None:
    store, other = stores
    for key in ("a", "b", "c"):
        store.put_record("docs", "ses_a", key, {"k": key, "v": 1})
    other.put_record("docs", "ses_b", "z", {"k": "z", "v": 1})  # another scope's record in between
    other.put_record("docs", "ses_a", "b", {"k": "b", "v": 2})  # replaced: keeps its place
    other.put_record("docs", "ses_a", "d", {"k": "d", "v": 1})
    store.put_record("docs", "ses_a", "a", {"k": "a", "v": 3})
    assert [(r["k"], r["v"]) for r in store.list_records("docs", "ses_a")] == [("a", 3), ("b", 2), ("c", 1), ("d", 1)]
    assert other.get_record("docs", "ses_a", "b") == {"k": "b", "v": 2}
    assert [r["k"] for r in other.list_records("docs", "ses_b")] == ["z"]


def test_postgresql_records_placed_before_the_sequence_stay_before_new_ones(postgresql_url: str) -> None:
    """A database whose records were placed by MAX(seq) + 1 (before records_seq): a new record goes after them,
    and opening the store again never moves the sequence back."""
    from conformity.db.connection import Database

    PostgresStore(postgresql_url).close()  # the schema
    db = Database(postgresql_url)
    conn = db.connect()
    try:
        conn.execute("INSERT INTO records VALUES ('docs', 'ses_a', 'old1', 1, '{\"k\": \"old1\"}'), "
                     "('docs', 'ses_a', 'old2', 2, '{\"k\": \"old2\"}'), ('docs', 'ses_b', 'old3', 7, '{\"k\": \"old3\"}')")
        conn.execute("DROP SEQUENCE records_seq")  # as an older sandbox left it
    finally:
        conn.close()
        db.dispose()
    store = PostgresStore(postgresql_url)
    try:
        store.put_record("docs", "ses_a", "new", {"k": "new"})
        assert [r["k"] for r in store.list_records("docs", "ses_a")] == ["old1", "old2", "new"]
    finally:
        store.close()
    again = PostgresStore(postgresql_url)
    try:
        again.put_record("docs", "ses_a", "newer", {"k": "newer"})
        assert [r["k"] for r in again.list_records("docs", "ses_a")] == ["old1", "old2", "new", "newer"]
    finally:
        again.close()


def test_a_sqlite_batch_and_lock_leave_the_store_to_other_threads_when_they_end(tmp_path: Path) -> None:
    """The SQLite store's batch and lock (plain context managers, not generators) release its lock however the block
    ends: another thread's store call goes through."""
    import threading

    store = Store(tmp_path / "sandbox.sqlite3")
    try:
        with pytest.raises(RuntimeError), store.batch():
            store.put_record("docs", "ses_a", "1", {"n": 1})
            raise RuntimeError("a problem inside the batch")
        with pytest.raises(RuntimeError), store.lock("dmp\nses_a"):
            raise RuntimeError("a problem under the lock")
        read: list[object] = []
        other = threading.Thread(target=lambda: read.append(store.get_record("docs", "ses_a", "1")))
        other.start()
        other.join(timeout=10)
        assert read == [{"n": 1}]
        assert not store._db.in_transaction
    finally:
        store.close()

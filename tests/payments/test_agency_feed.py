"""The agency's label feed as a service that lies, loops or breaks: a clear error (exit 2), never a loop nor a label
file replaced by another label."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from conformity.errors import InputError
from conformity.payments.agency_feed import sync_labels
from tests.payments.builders import revocation, revocation_list, signed_label, write_jsonl
from tests.payments.workspace import Workspace


class Feed:
    """What the fake agency answers: ``pages[after]`` for ``/api/v1/events?after=N``; counts the requests."""

    def __init__(self) -> None:
        self.pages: dict[int, Any] = {}
        self.requests = 0
        self.revocations: Any = None  # the list /api/v1/revocations serves (None: a fresh one per request)
        self.raw: dict[int, bytes] = {}  # an answer's bytes as they are, for ``after`` (instead of ``pages``)


@pytest.fixture
def feed() -> Iterator[tuple[Feed, str]]:
    with serve_feed(Feed()) as served:
        yield served


@contextmanager
def serve_feed(state: Feed, tls: ssl.SSLContext | None = None) -> Iterator[tuple[Feed, str]]:
    """The fake agency on a real HTTP server (HTTPS with ``tls``, a server context), in a thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            url = urlparse(self.path)
            if state.requests > 50:
                body: Any = {"error": "a client that never stops"}
                self.send_response(429)
            elif url.path == "/api/v1/events" and int(parse_qs(url.query)["after"][0]) in state.raw:
                body = state.raw[int(parse_qs(url.query)["after"][0])]
                self.send_response(200)
            elif url.path == "/api/v1/events":
                body = state.pages.get(int(parse_qs(url.query)["after"][0]), {"events": [], "cursor": 0, "more": False})
                self.send_response(200)
            else:
                body = state.revocations or revocation_list()
                self.send_response(200)
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def issued(label: Any, subject: str | None = None) -> dict[str, Any]:
    return {"type": "org.usine.label.issued", "subject": subject or label.doc["label_id"], "data": {"label": label.signed}}


def test_a_well_behaved_feed_is_mirrored(feed: tuple[Feed, str], tmp_path: Path) -> None:
    state, url = feed
    label = signed_label()
    state.pages[0] = {"events": [issued(label)], "cursor": 1, "more": True}
    state.pages[1] = {"events": [{"type": "org.usine.label.revoked", "subject": "x"}], "cursor": 2, "more": False}
    synced = sync_labels(url, tmp_path)
    assert (synced.labels, synced.events, synced.cursor) == (1, 2, 2)
    assert json.loads((tmp_path / f"label-{label.doc['label_id']}.json").read_text()) == label.signed
    assert (tmp_path / ".feed-cursor").read_text() == "2\n"


def test_a_feed_that_says_more_without_moving_on_is_an_error_not_a_loop(feed: tuple[Feed, str], tmp_path: Path) -> None:
    state, url = feed
    state.pages[0] = {"events": [], "cursor": 0, "more": True}
    with pytest.raises(InputError, match="a feed only moves forward"):
        sync_labels(url, tmp_path)
    assert state.requests == 1


def test_a_feed_whose_cursor_goes_back_is_an_error(feed: tuple[Feed, str], tmp_path: Path) -> None:
    state, url = feed
    state.pages[0] = {"events": [issued(signed_label())], "cursor": 1, "more": True}
    state.pages[1] = {"events": [issued(signed_label(software="other-ehr"))], "cursor": 0, "more": True}
    with pytest.raises(InputError, match="answered 1 event.* and the cursor 0"):
        sync_labels(url, tmp_path)
    assert state.requests == 2 and not (tmp_path / ".feed-cursor").exists()
    assert list(tmp_path.glob("label-*.json")) == []  # nothing of a sync that fails is written (see below)


def test_a_label_under_another_labels_name_is_refused(feed: tuple[Feed, str], tmp_path: Path) -> None:
    """A feed entry for label A carrying label B would replace A's file: A would be lost, its events unpaid."""
    state, url = feed
    a, b = signed_label(), signed_label(software="other-ehr")
    state.pages[0] = {"events": [issued(a)], "cursor": 1, "more": False}
    sync_labels(url, tmp_path)
    state.pages[1] = {"events": [issued(b, subject=a.doc["label_id"])], "cursor": 2, "more": False}
    with pytest.raises(InputError, match=f"a label that says it is '{b.doc['label_id']}'"):
        sync_labels(url, tmp_path)
    assert json.loads((tmp_path / f"label-{a.doc['label_id']}.json").read_text()) == a.signed  # not replaced


@pytest.mark.parametrize("page", [[1, 2], {"events": [1], "cursor": 1}, {"events": [], "cursor": "x"},
                                  {"events": "all", "cursor": 1}, {"events": [], "cursor": -3, "more": False}])
def test_a_page_that_is_not_the_feed_is_an_error(feed: tuple[Feed, str], tmp_path: Path, page: Any) -> None:
    state, url = feed
    state.pages[0] = page
    with pytest.raises(InputError, match="not its label feed"):
        sync_labels(url, tmp_path)
    assert not (tmp_path / ".feed-cursor").exists()


def test_a_broken_cursor_file_is_a_clear_error_of_pay_run(feed: tuple[Feed, str], ws: Workspace) -> None:
    """Before, ``int()`` of the file's text raised ValueError: a traceback and exit 1."""
    state, url = feed
    (ws.labels / ".feed-cursor").write_text("12abc\n")
    (ws.labels / "revocations.json").unlink()  # --agency brings it
    r = ws.run(write_jsonl(ws.root / "e.jsonl", []), extra=("--agency", url))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and ".feed-cursor" in r.stderr and "not a count of events" in r.stderr
    assert state.requests == 0 and not r.out.exists()


def test_an_older_revocation_list_from_the_service_does_not_replace_a_newer_one(feed: tuple[Feed, str],
                                                                               tmp_path: Path) -> None:
    """Before, whatever list the service served replaced revocations.json: a stale cache or a service restored from a
    backup put back a list without the latest revocations, still fresh, before any run relied on the newer one."""
    state, url = feed
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    entries = [revocation("lbl_AAAAAAAAAAAA", now - dt.timedelta(days=1))]
    newer = revocation_list(entries, now=now)
    (tmp_path / "revocations.json").write_text(json.dumps(newer), encoding="utf-8")
    state.revocations = revocation_list(entries, now=now - dt.timedelta(days=3))
    with pytest.raises(InputError, match="serves a revocation list issued .* before the one already here"):
        sync_labels(url, tmp_path)
    assert json.loads((tmp_path / "revocations.json").read_text()) == newer
    state.revocations = latest = revocation_list(entries, now=now + dt.timedelta(seconds=1))
    sync_labels(url, tmp_path)
    assert json.loads((tmp_path / "revocations.json").read_text()) == latest


def test_a_revocation_list_with_fewer_entries_does_not_replace_one_with_more_whatever_its_time(
        feed: tuple[Feed, str], tmp_path: Path) -> None:
    """Before, only the time was compared: a service serving, under a later time, a list that lost a revocation
    (restored from a backup, a registry that lost revocations) replaced the longer list before any run relied on it,
    and the run then paid the label the mirror had un-revoked. The agency's lists only grow: fewer entries is older."""
    state, url = feed
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    both = [revocation("lbl_AAAAAAAAAAAA", now - dt.timedelta(days=2)),
            revocation("lbl_BBBBBBBBBBBB", now - dt.timedelta(days=1))]
    longer = revocation_list(both, now=now - dt.timedelta(hours=2))
    (tmp_path / "revocations.json").write_text(json.dumps(longer), encoding="utf-8")
    state.revocations = revocation_list(both[:1], now=now)
    with pytest.raises(InputError, match="1 revocation.* fewer than the 2 of the one already here") as raised:
        sync_labels(url, tmp_path)
    assert [(p.file, p.where) for p in raised.value.problems] == [(str(tmp_path / "revocations.json"), "--agency")]
    assert json.loads((tmp_path / "revocations.json").read_text()) == longer
    state.revocations = later = revocation_list(both, now=now)  # as many entries, later: replaces it
    sync_labels(url, tmp_path)
    assert json.loads((tmp_path / "revocations.json").read_text()) == later


def test_a_feed_that_says_more_with_no_events_is_an_error_not_a_loop(feed: tuple[Feed, str], tmp_path: Path) -> None:
    """QA (orders, not fixed then): a service moving its cursor by one with no event and ``more`` kept a run asking
    (here, until the fake's 50th request); a page with more to come carries events."""
    state, url = feed
    for n in range(60):
        state.pages[n] = {"events": [], "cursor": n + 1, "more": True}
    with pytest.raises(InputError, match="answered none and 'more'"):
        sync_labels(url, tmp_path)
    assert state.requests == 1


def test_a_feed_answer_is_read_bounded_and_strictly(feed: tuple[Feed, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer past the bound is refused while it streams (it was read whole, any size); a member twice (which
    a reader may take first or last) is refused."""
    from conformity.payments import agency_feed

    state, url = feed
    monkeypatch.setattr(agency_feed, "MAX_ANSWER", 10_000)
    state.raw[0] = b'{"events": [], "cursor": 0, "more": false, "pad": "' + b"x" * 20_000 + b'"}'
    with pytest.raises(InputError, match="more than 10000 bytes"):
        sync_labels(url, tmp_path)
    state.raw[0] = b'{"events": [], "cursor": 0, "cursor": 1, "more": false}'
    with pytest.raises(InputError, match="not its label feed"):
        sync_labels(url, tmp_path)
    assert not (tmp_path / ".feed-cursor").exists()


def test_a_revocation_list_from_the_future_is_not_relied_on_nor_blocks_the_next(feed: tuple[Feed, str],
                                                                                tmp_path: Path) -> None:
    """QA (orders, not fixed then): a list issued by mistake a year ahead, once in the folder and relied on, made every
    list the agency issued until then 'older' (refused by the feed and by the ledger's check): every run stopped."""
    from conformity.labels import load_revocations
    from conformity.payments.labelbook import RevocationsNotFresh, check_fresh
    from conformity.signing import KeyRing
    from tests.payments.builders import AGENCY

    def agency_keys() -> KeyRing:
        return KeyRing([AGENCY.verify_key])

    state, url = feed
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    state.revocations = revocation_list(now=ahead)
    sync_labels(url, tmp_path)
    path = tmp_path / "revocations.json"
    found = load_revocations(path, agency_keys())
    with pytest.raises(RevocationsNotFresh, match="from the future"):
        check_fresh(found, path, dt.datetime.now(dt.UTC))
    state.revocations = revocation_list()  # the agency's real current list: replaces it
    sync_labels(url, tmp_path)
    check_fresh(load_revocations(path, agency_keys()), path, dt.datetime.now(dt.UTC))


def test_an_agency_that_cannot_be_read_leaves_no_labels_folder_behind(feed: tuple[Feed, str], tmp_path: Path) -> None:
    """Before, ``pay run --agency URL --labels DIR`` with the agency unreachable (or answering something else) stopped
    with exit 2 but left an empty DIR: a folder the next run without ``--agency`` would take for the labels."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    labels = tmp_path / "labels"
    with pytest.raises(InputError, match="cannot read labels from the agency"):
        sync_labels(f"http://127.0.0.1:{port}", labels)
    assert not labels.exists()
    state, url = feed
    state.pages[0] = {"events": "all", "cursor": 1}
    with pytest.raises(InputError, match="not its label feed"):
        sync_labels(url, labels)
    assert not labels.exists()


def test_an_agency_of_its_own_ca_is_read_with_agency_ca_and_refused_without(ws: Workspace) -> None:
    """pay run --agency had no way to trust an agency serving a certificate of its own CA (usine submit has --ca)."""
    from sandbox.tls import make_test_pki

    pki = make_test_pki(ws.root / "pki")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    (ws.labels / "revocations.json").unlink()  # --agency brings it
    with serve_feed(Feed(), server) as (state, url):
        r = ws.run(write_jsonl(ws.root / "e.jsonl", []), extra=("--agency", url))
        assert r.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in r.stderr, r.stderr
        r = ws.run(write_jsonl(ws.root / "e.jsonl", []), extra=("--agency", url, "--agency-ca", str(pki.ca_cert)))
        assert r.returncode == 0, r.stderr
        assert state.requests >= 2 and (ws.labels / "revocations.json").exists()


def test_an_unknown_wave_or_a_lone_agency_ca_is_refused_before_the_feed_is_read(feed: tuple[Feed, str],
                                                                                ws: Workspace) -> None:
    """pay run --agency mirrored the feed into --labels before it refused an unknown wave: a refused run had written."""
    state, url = feed
    (ws.labels / "revocations.json").unlink()
    before = sorted(p.name for p in ws.labels.iterdir())
    r = ws.run(write_jsonl(ws.root / "e.jsonl", []), wave="2099-W9", extra=("--agency", url))
    assert r.returncode == 2 and "unknown wave '2099-W9'" in r.stderr, r.stderr
    r = ws.run(write_jsonl(ws.root / "e.jsonl", []), extra=("--agency-ca", str(ws.root / "e.jsonl")))
    assert r.returncode == 2 and "--agency-ca" in r.stderr and "give --agency too" in r.stderr, r.stderr
    assert state.requests == 0 and sorted(p.name for p in ws.labels.iterdir()) == before


def test_a_sync_whose_revocation_list_is_refused_writes_none_of_its_labels(feed: tuple[Feed, str],
                                                                         tmp_path: Path) -> None:
    """Before, the labels of a sync were written page by page, the revocation list last: when the list was then
    refused (or could not be read), the new labels stayed beside the list already there, which does not revoke
    them (a label issued and revoked since), and a later ``pay run --labels`` paid on it. Now nothing of a sync that
    fails is written: no label, no cursor; the next sync brings them with a list that covers them."""
    state, url = feed
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first, second = signed_label(), signed_label(software="other-ehr")
    state.pages[0] = {"events": [issued(first)], "cursor": 1, "more": False}
    state.revocations = here = revocation_list([], now=now)
    sync_labels(url, tmp_path)
    state.pages[1] = {"events": [issued(second)], "cursor": 2, "more": False}
    state.revocations = revocation_list([], now=now - dt.timedelta(days=3))  # a service restored from a backup
    with pytest.raises(InputError, match="before the one already here"):
        sync_labels(url, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".feed-cursor", "revocations.json", f"label-{first.doc['label_id']}.json"])
    assert (tmp_path / ".feed-cursor").read_text() == "1\n"
    assert json.loads((tmp_path / "revocations.json").read_text()) == here
    entries = [revocation(second.doc["label_id"], now)]
    state.revocations = latest = revocation_list(entries, now=now + dt.timedelta(seconds=1))
    assert sync_labels(url, tmp_path).labels == 1
    assert (tmp_path / f"label-{second.doc['label_id']}.json").exists()
    assert json.loads((tmp_path / "revocations.json").read_text()) == latest
    assert (tmp_path / ".feed-cursor").read_text() == "2\n"
    assert [p.name for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}.feed-")] == []

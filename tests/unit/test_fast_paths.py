"""The sandbox's per-request fast paths decide exactly as the slow definitions they replace (property-based, seeded).

* ``require_canonicalisable`` (a walk) refuses exactly the JSON values ``canonical_json`` (RFC 8785) refuses;
* ``credentials.candidates`` (one pass over each run of token characters) finds exactly what ``SECRET_SHAPED``
  (a bounded exact-length pattern) finds, lowercase-hex runs (ids, digests) left out;
* ``parsed.parse_json`` (orjson first, bytes or text) gives exactly what ``json.loads`` gives, or raises where it raises;
* the recording middleware's one walk (``recording.survey``) finds the strings ``_strings`` gives that may hold a
  secret, and the members ``redact`` masks; the exchange text it stores when nothing is to be redacted
  (``recording.unredacted_text``) is the text of the redacted exchange, byte for byte;
* the safe XML parser kept for each thread (``xmlsafe._parser``) parses and refuses as a parser made for each
  document did, whatever it parsed before;
* ``deps.base_url`` (kept by what Starlette builds it from) is ``str(request.base_url)`` without its trailing slash;
* the shared record's ``Location`` (``dmp._quote``) is ``urllib.parse.quote(unique_id, safe="")``;
* ``deps.read_json`` reads the body the recording middleware read (``REQUEST_BODY``) as it reads the request's own.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from conformity.errors import SignatureError
from conformity.signing import canonical_json, require_canonicalisable
from sandbox.credentials import HEX_ONLY, SECRET_SHAPED, candidates

LIMIT = (1 << 53) - 1
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-LIMIT - 3, max_value=LIMIT + 3), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=8),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)), max_leaves=12)


def refused_by_canonical_json(value: object) -> bool:
    try:
        canonical_json(value)
    except SignatureError:
        return True
    return False


@seed(1453)
@settings(max_examples=400, deadline=None, database=None)
@given(values)
def test_require_canonicalisable_refuses_exactly_what_canonical_json_refuses(value: object) -> None:
    refused = refused_by_canonical_json(value)
    if refused:
        with pytest.raises(SignatureError):
            require_canonicalisable(value)
    else:
        require_canonicalisable(value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1 << 53, -(1 << 53), "\ud800",
                                 {"k": ["x", {"deep": "\udfff"}]}, {1: "key not a string"}, {"k": object()}])
def test_each_value_rfc_8785_cannot_carry_is_refused(bad: object) -> None:
    assert refused_by_canonical_json(bad)
    with pytest.raises(SignatureError):
        require_canonicalisable(bad)


def test_a_recorded_body_keeps_its_integers_exact_or_falls_back_to_text() -> None:
    from sandbox.recording import encode_body

    assert encode_body(b'{"n": 9007199254740991}', "application/json") == {"json": {"n": 9007199254740991}}
    assert encode_body(b'{"n": 9007199254740993}', "application/json") == {"text": '{"n": 9007199254740993}'}
    assert encode_body(b'{"s": "\\ud800"}', "application/json") == {"text": '{"s": "\\ud800"}'}


TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
pieces = st.one_of(
    st.text(alphabet=TOKEN, min_size=0, max_size=50),  # runs around the issued lengths, 32 and 43
    st.sampled_from([secrets.token_urlsafe(24), secrets.token_urlsafe(32), secrets.token_urlsafe(33)]),
    st.text(alphabet=" .:/+=\"'éΩ\n", min_size=0, max_size=3),
)


@seed(2027)
@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(st.lists(pieces, max_size=8).map("".join), max_size=4))
def test_candidates_find_exactly_what_the_secret_shaped_pattern_finds(texts: list[str]) -> None:
    expected = {m for t in texts for m in SECRET_SHAPED.findall(t) if HEX_ONLY.fullmatch(m) is None}
    assert candidates(texts) == expected


def test_a_hex_run_is_no_candidate_an_issued_token_is() -> None:
    """A document's unique id (``root^<uuid hex>``) and a digest are not looked up; a token, even one that is nearly
    all hex, is."""
    unique_id = f"1.2.250.1.999.42.1^{uuid.uuid4().hex}"
    nearly = "0123456789abcdef" * 2
    nearly = nearly[:-1] + "g"
    token = secrets.token_urlsafe(24)
    assert candidates([unique_id, f"/documents/{unique_id}", hashlib.md5(b"x").hexdigest()]) == set()
    assert candidates([f"{unique_id} {token}", nearly, ("0123456789ABCDEF" * 2)]) == {
        token, nearly, "0123456789ABCDEF" * 2}


def test_a_secret_inside_a_longer_run_is_not_a_candidate_but_one_beside_punctuation_is() -> None:
    secret = secrets.token_urlsafe(24)  # 32 characters
    assert candidates([f"Bearer {secret}", json.dumps({"t": secret})]) == {secret}
    assert candidates([secret + "x", "x" + secret, secret[:-1]]) == set()


def _loads_or_error(parse: object, raw: bytes | str) -> object:
    try:
        return ("value", parse(raw))  # type: ignore[operator]
    except (ValueError, RecursionError) as exc:
        return ("error", type(exc).__name__)


def _same(a: object, b: object) -> bool:
    """Equal, with the same types all the way down (1 is not 1.0; NaN equals NaN)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    return a == b


json_texts = st.one_of(
    values.map(lambda v: json.dumps(v).encode()),  # NaN, Infinity, lone surrogates, integers of any size
    values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.binary(max_size=24),
    st.sampled_from([b"[" * 3000 + b"]" * 3000, b"1e400", b"-0", b'{"a": 1, "a": 2}', b" \n[1] ", b"[1,]",
                     b"18446744073709551616", b"-9223372036854775809", b'"\\ud800"', b"\xef\xbb\xbf[]",
                     b'{"a": [{"b": 123456789012345678901234}], "c": "1234567890123456789012"}',
                     b'{"n": 1234567890123456789, "x": 0.5}', b'{"d": "12345678901234567890123", "x": 1.5}']),
)


@seed(1789)
@settings(max_examples=250, deadline=None, database=None)
@given(json_texts)
def test_parse_json_gives_what_json_loads_gives(raw: bytes) -> None:
    from sandbox.parsed import parse_json

    texts: list[bytes | str] = [raw]
    try:
        texts.append(raw.decode("utf-8"))  # the store's texts: the same answer as for their bytes
    except UnicodeDecodeError:
        pass
    def utf8_json(text: bytes | str) -> object:
        """The reference: JSON text in UTF-8 (json.loads of bytes would also read UTF-16, UTF-32 and a BOM)."""
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)

    for text in texts:
        ours, reference = _loads_or_error(parse_json, text), _loads_or_error(utf8_json, text)
        assert ours[0] == reference[0]
        if reference[0] == "value":
            assert _same(ours[1], reference[1])


SECRETS = [secrets.token_urlsafe(24), secrets.token_urlsafe(32), "admin-token-with \"quote\" and é", "x\n\u2028y-secret"]
secret_texts = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(SECRETS)), max_size=3).map("".join)
keys = st.one_of(st.text(max_size=4), st.sampled_from(["client_secret", "Access_Token", "code", "token", "x" * 40]),
                 secret_texts)
exchange_values = st.recursive(
    st.one_of(scalars, secret_texts, st.sampled_from([secrets.token_urlsafe(24), "a" * 40])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4),
                            st.dictionaries(st.integers(), inner, max_size=2), st.tuples(inner)),
    max_leaves=16)


@seed(1215)
@settings(max_examples=500, deadline=None, database=None)
@given(st.dictionaries(keys, exchange_values, min_size=1, max_size=5), st.lists(st.sampled_from(SECRETS), max_size=3))
def test_the_recording_walk_and_its_unredacted_text_mean_what_redact_means(exchange: dict[str, object],
                                                                         secret_list: list[str]) -> None:
    from sandbox.credentials import SHORTEST
    from sandbox.recording import SECRET_FIELDS, _strings, redact, survey, unredacted_text
    from sandbox.store import dump_own

    strings, named = survey(exchange)
    assert sorted(strings) == sorted(s for s in _strings(exchange) if len(s) >= SHORTEST)

    def member_names(value: object) -> list[object]:
        if isinstance(value, dict):
            return [*value, *(k for v in value.values() for k in member_names(v))]
        return [k for v in value for k in member_names(v)] if isinstance(value, list) else []

    assert named == any(isinstance(k, str) and k.lower() in SECRET_FIELDS for k in member_names(exchange))
    text = unredacted_text(exchange, secret_list)
    if text is not None and not named:
        assert text == dump_own(redact(exchange, secret_list))  # type: ignore[arg-type]


def test_an_exchange_with_a_secret_in_it_goes_the_slow_way() -> None:
    from sandbox.recording import unredacted_text

    secret = secrets.token_urlsafe(32)
    assert unredacted_text({"request": {"body": {"json": {"note": f"my token is {secret}!"}}}}, [secret]) is None
    assert unredacted_text({"request": {"headers": {"x": f"a\n{secret}"}}}, ["a\n" + secret]) is None
    assert unredacted_text({"n": 1 << 70}, [secret]) is None  # orjson cannot write it: json.dumps will
    assert unredacted_text({"request": {"path": "/s/x/dmp"}}, [secret]) == '{"request":{"path":"/s/x/dmp"}}'


XML_CASES = [b"<a><b>x</b></a>", b"<a><b></a>", b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xe9</a>", b"",
             b"<a>&undeclared;</a>", b"<a xmlns='urn:x'><b/>tail</a>", b"not xml", b"<a>" * 70 + b"</a>" * 70,
             b"<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>", b"<a attr='1' attr='2'/>", b"<a/>"]


def _outcome(data: bytes) -> tuple[str, str]:
    """What ``parse_xml`` makes of ``data``: its refusal's message, or the tree it parsed (and the declared encoding)."""
    from lxml import etree

    from conformity.errors import XMLSecurityError
    from conformity.xmlsafe import parse_xml

    try:
        root = parse_xml(data)
    except XMLSecurityError as exc:
        return "refused", str(exc)
    return "parsed", etree.tostring(root).decode("utf-8") + (root.getroottree().docinfo.encoding or "")


@seed(1871)
@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.sampled_from(XML_CASES), min_size=1, max_size=6))
def test_the_thread_s_xml_parser_decides_as_a_fresh_parser_whatever_it_parsed_before(sequence: list[bytes]) -> None:
    from conformity import xmlsafe

    kept = [_outcome(data) for data in sequence]
    original = xmlsafe._parser
    try:
        xmlsafe._parser = xmlsafe._new_parser  # type: ignore[assignment]  # a parser made for each document
        fresh = [_outcome(data) for data in sequence]
    finally:
        xmlsafe._parser = original  # type: ignore[assignment]
    assert kept == fresh


def test_each_thread_has_its_own_xml_parser() -> None:
    import threading

    from conformity import xmlsafe

    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(xmlsafe._parser()))
    worker.start()
    worker.join()
    assert xmlsafe._parser() is xmlsafe._parser()
    assert seen[0] is not xmlsafe._parser()


hosts = st.one_of(st.none(), st.sampled_from(["example.org", "example.org:8443", "127.0.0.1:80", "[::1]:8000", "bad host",
                                              "h:0", "h:99999", "", "É.example"]))


@seed(1903)
@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(["http", "https"]), st.sampled_from([None, ("127.0.0.1", 8000), ("::1", 443), ["h", 80]]),
       hosts, st.sampled_from(["", "/sandbox", "/a/"]), st.one_of(st.none(), st.sampled_from(["", "/app"])))
def test_the_base_url_kept_is_starlette_s(scheme: str, server: object, host: str | None, root_path: str,
                                          app_root_path: str | None) -> None:
    from starlette.requests import Request

    from sandbox.deps import base_url

    scope: dict[str, object] = {"type": "http", "method": "POST", "scheme": scheme, "server": server, "path": "/s/x",
                                "root_path": root_path, "query_string": b"a=1",
                                "headers": [] if host is None else [(b"host", host.encode("utf-8"))]}
    if app_root_path is not None:
        scope["app_root_path"] = app_root_path
    expected = str(Request(scope).base_url).rstrip("/")
    assert base_url(Request(scope)) == expected
    assert base_url(Request(scope)) == expected  # the kept one


@seed(1917)
@settings(max_examples=500, deadline=None, database=None)
@given(st.one_of(st.text(max_size=12), st.from_regex(r"[0-2](\.[0-9]+){1,6}(\^[A-Za-z0-9.\-_~]{1,12})?", fullmatch=True)))
def test_the_location_s_unique_id_is_quoted_as_urllib_quotes_it(unique_id: str) -> None:
    from urllib.parse import quote

    from sandbox.packs.health.dmp import _quote

    assert _quote(unique_id) == quote(unique_id, safe="")


@seed(1793)
@settings(max_examples=100, deadline=None, database=None)
@given(st.binary(max_size=40) | st.dictionaries(st.text(max_size=4), scalars, max_size=3).map(
    lambda d: json.dumps(d).encode()))
def test_read_json_decides_on_the_middleware_s_body_as_on_the_request_s(raw: bytes) -> None:
    import asyncio

    from pydantic import BaseModel, ConfigDict
    from starlette.requests import Request

    from sandbox.deps import REQUEST_BODY, read_json
    from sandbox.problems import HTTPProblem

    class Anything(BaseModel):
        model_config = ConfigDict(extra="allow")

    def request(state: dict[str, bytes]) -> Request:
        sent = [{"type": "http.request", "body": raw, "more_body": False}]

        async def receive() -> dict[str, object]:
            assert not state, "the body the middleware read is read again"
            return sent.pop() if sent else {"type": "http.disconnect"}
        return Request({"type": "http", "method": "POST", "path": "/", "headers": [(b"content-type",
                        b"application/json")], "state": state}, receive)  # type: ignore[arg-type]

    def outcome(req: Request) -> object:
        try:
            return asyncio.run(read_json(req, Anything)).model_dump()
        except HTTPProblem as problem:
            return (problem.status, problem.code, problem.detail)

    assert outcome(request({REQUEST_BODY: raw})) == outcome(request({}))


def _pairs_text(pairs: object, ascii_only: bool) -> str:
    """A JSON text of nested ``(name, value)`` pair lists (objects that may name a member twice)."""
    if isinstance(pairs, list) and pairs and all(isinstance(p, tuple) for p in pairs):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=ascii_only)} : {_pairs_text(v, ascii_only)}"
                               for k, v in pairs) + "}"
    if isinstance(pairs, list):
        return "[" + ",".join(_pairs_text(v, ascii_only) for v in pairs) + "]"
    return json.dumps(pairs, ensure_ascii=ascii_only)


colon_strings = st.lists(st.sampled_from(["a", ":", "\\", "u003a", "é", "\u2028", '"']), max_size=5).map("".join)
pair_values = st.recursive(
    st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False), colon_strings),
    lambda inner: st.one_of(st.lists(st.tuples(st.sampled_from(["a", "b", ":", "a:", "\\u003a", ""]), inner),
                                     min_size=1, max_size=4),
                            st.lists(inner, max_size=3)),
    max_leaves=12)


@settings(derandomize=True, max_examples=600, deadline=None, database=None)
@given(st.one_of(json_texts, st.tuples(pair_values, st.booleans()).map(lambda p: _pairs_text(*p).encode())))
def test_parse_body_gives_what_json_loads_refusing_a_member_named_twice_gives(raw: bytes) -> None:
    """``parse_body`` (orjson, then a count of colons to find a member named twice without a second parse) gives
    exactly the value ``json.loads`` gives, and refuses (:class:`DuplicateMember`) exactly the texts ``json.loads``
    with a hook refusing a name given twice refuses: colons in names and values, ``\\u003a`` escapes, an escaped
    backslash before ``u003a``, non-ASCII and line separators."""
    from sandbox.parsed import DuplicateMember, parse_body

    def refusing(pairs: list[tuple[str, object]]) -> dict[str, object]:
        if len({name for name, _ in pairs}) < len(pairs):
            raise DuplicateMember("?")
        return dict(pairs)

    def reference(text: bytes | str) -> object:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text, object_pairs_hook=refusing)

    for text in ([raw, raw.decode("utf-8")] if raw.isascii() else [raw]):
        ours, expected = _loads_or_error(parse_body, text), _loads_or_error(reference, text)
        assert ours[0] == expected[0], (text, ours, expected)
        if expected[0] == "value":
            assert _same(ours[1], expected[1])
        else:
            assert ours[1] == expected[1], (text, ours, expected)


def test_parse_body_names_the_member_named_twice() -> None:
    from sandbox.parsed import DuplicateMember, parse_body

    for raw, name in ((b'{"household": "A", "household": "B"}', "household"),
                      (b'{"x": [{"k": "a:b", "k": 1}]}', "k"), (b'{"\\u003a": 1, ":": 2}', ":")):
        with pytest.raises(DuplicateMember) as caught:
            parse_body(raw)
        assert caught.value.name == name
    assert parse_body(b'{"t": "12:00:00", "u": "\\u003a", "v": "\\\\u003a"}') == {"t": "12:00:00", "u": ":",
                                                                                   "v": "\\u003a"}

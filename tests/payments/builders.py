"""Inputs built with the real code: labels signed with ``sign_label``, events from ``data_received``, sealed in
signed segments with ``conformity.segments`` (the infrastructure's side), revocation lists from ``sign_revocations``."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.resources
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from joserfc.util import urlsafe_b64decode, urlsafe_b64encode
from lxml import etree

from conformity.infrastructure_keys import keys_document
from conformity.labels import SignedLabel, sign_label, sign_revocations
from conformity.segments import write_sealed
from conformity.signing import SigningKey
from sandbox.events import data_received

AGENCY = SigningKey.from_seed(b"usine tests: the labelling agency")
FORGER = SigningKey.from_seed(b"usine tests: somebody else")
INFRA = SigningKey.from_seed(b"usine tests: the infrastructure")
INFRA_SOURCES = ("urn:usine:sandbox:dmp", "urn:usine:sandbox:mss")
SEGMENT_LINES = 4  # small segments: a test sees several of them
WAVE = "2026-W1"
AS_OF = "2027-06-30T23:59:59Z"
T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
#: test revocation lists stay fresh past AS_OF (the run's time is the later of --as-of and now)
FRESH = dt.timedelta(days=1500)


def label_fields(vendor: str = "acme", software: str = "acme-ehr", versions: Iterable[str] = ("3.2",),
                 category: str = "HOSPITAL", wave: str = WAVE, issued: str = "2026-02-01T00:00:00Z",
                 expires: str = "2028-12-31", label_id: str | None = None, vendor_name: str | None = None,
                 software_name: str | None = None) -> dict[str, Any]:
    """The fields of a label (before signing); the id is derived from the scope unless given."""
    scope = f"{vendor}|{software}|{','.join(versions)}|{category}|{wave}|{issued}|{expires}"
    return {
        "label_id": label_id or "lbl_" + hashlib.sha256(scope.encode()).hexdigest()[:24],
        "vendor": {"id": vendor, "name": vendor_name or vendor.title()},
        "software": {"id": software, "name": software_name or software.upper(), "registration_id": f"REG-{software}"},
        "versions": list(versions), "category": category, "wave": wave,
        "referentials": {"DOCSHARE": "1.0"}, "requirements_passed": ["DOCSHARE-001"],
        "run": {"id": hashlib.sha256(scope.encode()).hexdigest()[:16], "seed": 0, "harness": "0.1.0",
                "submission": "sub_" + hashlib.sha256(scope.encode()).hexdigest()[:20]},
        "requirements_reviewed": [],
        "issued": issued, "expires": expires, "bundle_sha256": "0" * 64,
    }


def signed_label(key: SigningKey = AGENCY, **fields: Any) -> SignedLabel:
    return sign_label(label_fields(**fields), key)


def write_label(folder: Path, label: SignedLabel, name: str | None = None) -> Path:
    """Write the label file (the JWS), named after the label id unless ``name`` is given."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{label.doc['label_id']}.json")
    path.write_text(json.dumps(label.signed, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def tampered(signed: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The JWS with its payload changed after signing (the signature kept): what a forger would try."""
    payload = {**json.loads(urlsafe_b64decode(signed["payload"].encode())), **changes}
    return {**signed, "payload": urlsafe_b64encode(json.dumps(payload).encode()).decode()}


def installation(site: str = "750100011", size: str = "M", vendor: str = "acme", software: str = "acme-ehr",
                 version: str = "3.2", category: str = "HOSPITAL", wave: str = WAVE, site_name: str | None = None,
                 software_name: str | None = None) -> dict[str, Any]:
    """An installation as the sandbox's admin API registers it."""
    return {"id": f"ins_{software}_{site}", "vendor_id": vendor, "wave": wave, "category": category,
            "software": {"id": software, "name": software_name or software.upper(), "version": version,
                         "registration_id": f"REG-{software}"},
            "site": {"id": site, "size": size, "name": site_name or f"Site {site}"}}


def event(inst: dict[str, Any], when: dt.datetime, n: int, kind: str = "document",
          document_type: str | None = "34106-7", source: str = "urn:usine:sandbox:dmp") -> dict[str, Any]:
    """A data-received event from ``data_received``, with a deterministic id ``evt-<site>-<n>``."""
    ref = f"doc-{inst['site']['id']}-{n}"
    ev = data_received(inst, source=source, kind=kind, document_type=document_type, size=1000 + n,
                       sha256=hashlib.sha256(ref.encode()).hexdigest(), reference=ref, when=when)
    ev["id"] = f"evt-{inst['software']['id']}-{inst['site']['id']}-{n}"
    return ev


def events_for(inst: dict[str, Any], count: int, start: dt.datetime = T0, every: dt.timedelta = dt.timedelta(days=1),
               first: int = 0, **kw: Any) -> list[dict[str, Any]]:
    return [event(inst, start + i * every, first + i, **kw) for i in range(count)]


def modified(ev: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``ev`` with members changed, each named by its path with ``__`` (``data__site__size="L"``)."""
    out = json.loads(json.dumps(ev))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = out
        for p in parents:
            node = node[p]
        node[last] = value
    return out


def line_of(ev: dict[str, Any] | str) -> str:
    return ev if isinstance(ev, str) else json.dumps(ev, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(path: Path, events: Iterable[dict[str, Any] | str], *, key: SigningKey | None = INFRA,
                every: int = SEGMENT_LINES) -> Path:
    """An events file, sealed in signed segments of ``every`` lines by ``key`` (None: not sealed at all)."""
    if key is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line_of(ev) + "\n" for ev in events), encoding="utf-8")
        return path
    return write_sealed(path, (line_of(ev) for ev in events), key, every=every)


def infrastructure_keys(key: SigningKey = INFRA, sources: Iterable[str] = INFRA_SOURCES) -> dict[str, Any]:
    """The infrastructure keys document a payment agency trusts."""
    return keys_document([(key.verify_key, sources)], name="tests")


def revocation_list(entries: Iterable[dict[str, Any]] = (), key: SigningKey = AGENCY,
                    now: dt.datetime | None = None, validity: dt.timedelta = FRESH) -> dict[str, Any]:
    """A signed revocation list (fresh for the tests' runs unless ``now``/``validity`` say otherwise)."""
    return sign_revocations(list(entries), key, now=now, validity=validity)


def revocation(label_id: str, revoked: dt.datetime | str, software: str = "acme-ehr", version: str = "3.2",
               wave: str = WAVE, reason: str = "security flaw") -> dict[str, Any]:
    when = revoked if isinstance(revoked, str) else revoked.isoformat().replace("+00:00", "Z")
    return {"label_id": label_id, "software_id": software, "version": version, "wave": wave, "revoked": when,
            "reason": reason}


def pain001_schema() -> etree.XMLSchema:
    """The ISO 20022 pain.001.001.09 XSD shipped inside the sepaxml package (a test dependency: missing fails)."""
    xsd = importlib.resources.files("sepaxml") / "schemas" / "pain.001.001.09.xsd"
    if not xsd.is_file():
        pytest.fail("sepaxml (a test dependency) no longer ships pain.001.001.09.xsd")
    with importlib.resources.as_file(xsd) as path:
        return etree.XMLSchema(etree.parse(str(path)))


#: the EPC SEPA Credit Transfer implementation guidelines (EPC132-08 §1.4, EPC217-08): the Latin character set every
#: text field is restricted to, and the lengths of the fields usine writes (written out here, apart from the code)
EPC_SET = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]*")
EPC_MAX = {"Nm": 70, "Ustrd": 140, "MsgId": 35, "PmtInfId": 35, "EndToEndId": 35, "InstrId": 35}
EPC_REFERENCES = {"MsgId", "PmtInfId", "EndToEndId", "InstrId"}


def epc_problems(xml: bytes) -> list[str]:
    """Every text field of a pain.001 that breaks the EPC rules: outside the Latin set, longer than its maximum (140
    for any other text), empty, or a reference with a leading or trailing ``/`` or ``//`` inside."""
    from conformity.xmlsafe import parse_xml

    problems = []
    for el in parse_xml(xml, source="pain.001").iter():
        if len(el) or not isinstance(el.tag, str):
            continue
        tag, text = etree.QName(el).localname, el.text or ""
        if not EPC_SET.fullmatch(text):
            problems.append(f"<{tag}> {text!r}: outside the EPC Latin character set")
        if not text or len(text) > EPC_MAX.get(tag, 140):
            problems.append(f"<{tag}> {text!r}: {len(text)} characters (1 to {EPC_MAX.get(tag, 140)})")
        if tag in EPC_REFERENCES and (text.startswith("/") or text.endswith("/") or "//" in text):
            problems.append(f"<{tag}> {text!r}: a reference starts or ends with '/' or holds '//'")
    return problems

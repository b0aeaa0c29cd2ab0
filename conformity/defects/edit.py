"""Changing a copy of a recorded trace the way a defective software's trace would read.

Reading goes through :class:`~conformity.checks.trace.TraceView` (the very view checks use), whose
exchanges and notes hold the trace's own dicts: changing ``exchange.raw`` changes the copy.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree

from conformity.checks.helpers import step_exchanges
from conformity.checks.trace import Exchange, Note, TraceView
from conformity.xmlsafe import parse_xml

V3 = "urn:hl7-org:v3"
NS = {"v3": V3}


class TraceEdit:
    """One scenario's trace (a copy), with the queries a mutation needs to find what it changes."""

    def __init__(self, doc: dict[str, Any], others: Mapping[str, dict[str, Any]] | None = None):
        self.doc = doc
        #: the run's other traces, to read only (a defect whose trace holds what another scenario's gave it)
        self._others = others or {}

    def other(self, scenario: str) -> TraceView:
        """Another scenario's trace of the same run, to read (a mutation changes its own scenario's trace only)."""
        return TraceView(self._others[scenario])

    @property
    def view(self) -> TraceView:
        return TraceView(self.doc)

    @property
    def fixtures(self) -> dict[str, Any]:
        fixtures: dict[str, Any] = self.doc["fixtures"]
        return fixtures

    def step(self, name: str) -> Note:
        """The driver step named ``name`` (the last one, as checks read it)."""
        notes = [n for n in self.view.performed() if n.data.get("name") == name]
        if not notes:
            raise KeyError(f"no step {name!r} in the trace")
        return notes[-1]

    def output(self, name: str) -> dict[str, Any]:
        """The driver's output of a step (the dict in the trace: change it in place)."""
        output: dict[str, Any] = self.step(name).raw["data"]["output"]
        return output

    def set_output(self, name: str, value: dict[str, Any]) -> int:
        note = self.step(name)
        note.raw["data"]["output"] = value
        return note.seq

    def in_step(self, name: str, service: str | None = None, *, method: str | None = None,
                path: str = "") -> list[Exchange]:
        """The HTTP exchanges a step caused (optionally of one service, method, path suffix)."""
        return [e for e in step_exchanges(self.view, self.step(name), service)
                if (method is None or e.method == method) and e.local_path.endswith(path)]

    def exchanges(self, service: str | None = None, path: str = "", *, method: str | None = None) -> list[Exchange]:
        return [e for e in self.view.exchanges(service, method=method) if e.local_path.endswith(path)]

    def insert(self, raw: dict[str, Any]) -> float:
        """Add a recorded exchange or note (its ``seq`` places it; a fraction goes between two)."""
        self.doc["exchanges"].append(raw)
        self.doc["exchanges"].sort(key=lambda e: e["seq"])
        return float(raw["seq"]) if isinstance(raw["seq"], float) else int(raw["seq"])

    def copy_before(self, source: Exchange, note: Note, **changes: Any) -> float:
        """A copy of exchange ``source`` recorded just before step ``note``, with ``changes`` applied to it."""
        raw = copy.deepcopy(source.raw) | {"seq": note.seq - 0.5}
        for key, value in changes.items():
            raw[key] = value
        return self.insert(raw)

    def drop(self, keep: Callable[[dict[str, Any]], bool]) -> None:
        """Remove every recorded exchange or note for which ``keep`` is false."""
        self.doc["exchanges"] = [e for e in self.doc["exchanges"] if keep(e)]


# ---------------------------------------------------------------------------------------------
# submitted documents and message attachments


def request_json(e: Exchange) -> dict[str, Any]:
    body: dict[str, Any] = e.raw["request"]["body"]["json"]
    return body


def edit_document(e: Exchange, change: Callable[[etree._Element], None]) -> None:
    """Change the CDA a recorded submission carries; its hash and size follow (the software sends what it built)."""
    body = request_json(e)
    root = parse_xml(base64.b64decode(body["document"]), source="recorded document")
    change(root)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    body["document"] = base64.b64encode(data).decode()
    body["metadata"] |= {"hash": hashlib.sha1(data).hexdigest(), "size": len(data)}


def remove(path: str) -> Callable[[etree._Element], None]:
    """A document change: remove every element at ``path``."""

    def change(root: etree._Element) -> None:
        for el in root.xpath(path, namespaces=NS):
            el.getparent().remove(el)

    return change


def set_attr(path: str, name: str, value: str) -> Callable[[etree._Element], None]:
    """A document change: set attribute ``name`` of the first element at ``path``."""

    def change(root: etree._Element) -> None:
        root.xpath(path, namespaces=NS)[0].set(name, value)

    return change


def xdm_files(att: dict[str, Any]) -> dict[str, bytes]:
    """The members of an attachment's XDM ZIP (``att["content"]``, base64), by name, in order."""
    src = zipfile.ZipFile(io.BytesIO(base64.b64decode(att["content"])))
    return {info.filename: src.read(info) for info in src.infolist()}


def set_xdm_files(att: dict[str, Any], files: dict[str, bytes]) -> None:
    """An attachment's XDM ZIP made of ``files`` (name → bytes), in order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name, data in files.items():
            dst.writestr(name, data)
    att["content"] = base64.b64encode(out.getvalue()).decode()


def edit_xdm(e: Exchange, change: Callable[[bytes], bytes], attachment: int = 0) -> None:
    """Change METADATA.XML inside an attachment's XDM ZIP."""
    att = request_json(e)["attachments"][attachment]
    set_xdm_files(att, {name: change(data) if name.endswith("METADATA.XML") else data
                        for name, data in xdm_files(att).items()})

"""What the housing pack's trace mutations share: their defaults, and edits of the DPE documents they carry."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from lxml import etree

from conformity import defects
from conformity.checks.trace import Exchange
from conformity.defects import Change
from conformity.xmlsafe import parse_xml

WAVES = ("2026-W3", "2027-W4")
W4 = ("2027-W4",)


def mutation(
    mid: str, *, scenario: str, breaks: Iterable[str], category: str, waves: Iterable[str] = WAVES, where: str = ""
) -> Callable[[Change], Change]:
    """:func:`conformity.defects.mutation`, its id in the pack's namespace (``housing.<id>``), both housing waves by
    default."""
    return defects.mutation(
        f"housing.{mid}", scenario=scenario, breaks=breaks, waves=waves, category=category, where=where
    )


def copied(source: Exchange, seq: float) -> dict[str, Any]:
    """A copy of recorded exchange ``source``, to insert at ``seq`` (a fraction goes between two)."""
    raw: dict[str, Any] = copy.deepcopy(source.raw) | {"seq": seq}
    return raw


def refused(raw: dict[str, Any], status: int, code: str, **members: Any) -> dict[str, Any]:
    """Recorded exchange ``raw``, changed in place: the service answered ``status`` with the problem ``code`` (and the
    body's other ``members``)."""
    raw["response"] = {"status": status, "headers": {}, "body": {"json": {"code": code} | members}}
    raw["outcome"] = code
    return raw


def edit_dpe(e: Exchange, change: Callable[[etree._Element], None]) -> None:
    """Change the DPE document an upload carries (the request body as the trace holds it)."""
    body = e.raw["request"]["body"]
    root = parse_xml(body["text"].encode("utf-8"))
    change(root)
    body["text"] = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def set_text(path: str, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        found = root.find(path)
        assert found is not None, path
        found.text = value

    return change


def remove(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        found = root.find(path)
        assert found is not None, path
        found.getparent().remove(found)

    return change

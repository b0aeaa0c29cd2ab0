"""Safe XML parsing: the one place usine turns untrusted bytes into an XML tree.

No DTD (internal or external), no entity declarations or references, no network, a bounded
input size and a bounded element depth. Anything else is refused with XMLSecurityError.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from conformity.errors import XMLSecurityError

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64

_DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


_PARSERS = threading.local()


def _parser() -> etree.XMLParser:
    """This thread's safe parser, made once: an lxml parser may parse one document after another (its context is
    reset for each, its error log cleared) but not in two threads at once. A new parser for every document set up a
    fresh libxml2 parser context each time (a served submission paid that on a cold cache)."""
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = _new_parser()
    return parser


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


def parse_xml(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    source: str = "XML document",
) -> etree._Element:
    """Parse untrusted XML bytes and return the root element, or raise XMLSecurityError."""
    if not isinstance(data, (bytes, bytearray)):
        raise XMLSecurityError("XML must be given as bytes", file=source)
    if len(data) > max_bytes:
        raise XMLSecurityError(f"XML is {len(data)} bytes, more than the limit of {max_bytes}", file=source)
    if _DTD_MARKERS.search(data):
        raise XMLSecurityError("DTD and entity declarations are not allowed", file=source)
    try:
        root = etree.fromstring(bytes(data), _parser())
    except etree.XMLSyntaxError as exc:
        line = getattr(exc, "lineno", None)
        where = f"line {line}" if line else ""
        raise XMLSecurityError(f"not well-formed XML: {exc.msg}", file=source, where=where) from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XMLSecurityError("DTD is not allowed", file=source)
    _check_tree(root, max_depth, source)
    return root


def element_path(el: etree._Element) -> str:
    """An XPath-like location of an element: ``/ClinicalDocument/author[2]/assignedAuthor/id``."""
    parts = []
    node: etree._Element | None = el
    while node is not None:
        name = etree.QName(node).localname if isinstance(node.tag, str) else "node()"
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


def _check_tree(root: etree._Element, max_depth: int, source: str) -> None:
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if isinstance(el, etree._Entity):
            raise XMLSecurityError(f"entity reference &{el.name}; is not allowed", file=source,
                                   where=f"line {el.sourceline}")
        if depth > max_depth:
            raise XMLSecurityError(f"XML nesting deeper than {max_depth} elements", file=source,
                                   where=f"line {el.sourceline}")
        for child in el:
            stack.append((child, depth + 1))

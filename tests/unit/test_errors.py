"""conformity/errors.py's exception tree is truthful: it names every exception class of the core (conformity/ and
sandbox/ outside their packs/) with its module under its real base, and nothing else."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from conformity import errors

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = {"Exception", "ValueError"}


@functools.cache
def defined() -> dict[tuple[str, str], str]:
    """(module, class) → base, for every core class of conformity/ and sandbox/ deriving from an exception."""
    classes: dict[tuple[str, str], list[str]] = {}
    for top in ("conformity", "sandbox"):
        for path in (ROOT / top).rglob("*.py"):
            if "packs" in path.relative_to(ROOT / top).parts:
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    classes[(module, node.name)] = [ast.unparse(b).split(".")[-1] for b in node.bases]
    found: dict[tuple[str, str], str] = {}
    names = set(BUILTIN)
    while True:
        new = {k: next(b for b in bases if b in names) for k, bases in classes.items()
               if k not in found and any(b in names for b in bases)}
        if not new:
            return found
        found |= new
        names |= {name for _, name in new}


def documented() -> dict[tuple[str, str], str]:
    """(module, class) → parent, as the tree in errors.py's docstring draws them."""
    assert errors.__doc__
    lines = [line for line in errors.__doc__.splitlines() if re.match(r"\s{4}(\S|[│├└ ])", line)]
    out: dict[tuple[str, str], str] = {}
    stack: list[tuple[int, str]] = []
    for line in lines:
        m = re.match(r"^(\s*(?:[│ ]   )*)(?:[├└]── )?([A-Z]\w+)(?:\s+\((\w+(?:\.\w+)*)\))?", line)
        if not m or not m.group(2) or "──" not in line and m.group(2) != "Exception":
            continue
        depth, name = m.start(2), m.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        module = m.group(3) or "conformity.errors"
        if name not in BUILTIN:  # a built-in base (Exception, ValueError) is drawn as a parent, never defined here
            out[(module, name)] = stack[-1][1] if stack else ""
        stack.append((depth, name))
    return out


def test_the_tree_names_every_exception_class_under_its_base() -> None:
    drawn = {k: v for k, v in documented().items() if k[1] not in BUILTIN}
    assert drawn == defined()


def test_the_check_would_see_a_new_exception_class() -> None:
    assert ("conformity.errors", "SignatureError") in defined()
    assert defined()[("sandbox.services.idp", "OAuthError")] == "Exception"

"""``usine driver init``: a working stdio driver a vendor copies to start, in Python or JavaScript.

The skeleton speaks the whole protocol (``usine.driver/1``) and declares every action of the specification;
each action answers a clear "not implemented" JSON-RPC error until the vendor writes it, so a first run
shows the whole plan in error for that reason (never as conformity failures). Files: the protocol plumbing
(``driver.py`` / ``driver.js``, not to be edited), one function per action (``actions.py`` / ``actions.js``,
with the action's description, input and output schemas as comments), and ``vendor.toml``.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from conformity.catalog import Action
from conformity.errors import InputError
from conformity.files import output_set, write_atomic

KIT = Path(__file__).resolve().parent
LANGUAGES = {"python": ("driver.py", "actions.py", ["python3", "driver.py"]),
             "javascript": ("driver.js", "actions.js", ["node", "driver.js"])}


@dataclass(frozen=True, slots=True)
class Skeleton:
    """The files of a driver skeleton: name → text."""

    files: dict[str, str]


def _comment(action: Action, prefix: str) -> str:
    schemas = (f"{action.name} ({action.referential} {action.version}): {action.description}\n"
               f"input schema: {json.dumps(action.input, ensure_ascii=False)}\n"
               f"output schema: {json.dumps(action.output, ensure_ascii=False)}")
    lines = [line for para in schemas.splitlines() for line in textwrap.wrap(para, 112, subsequent_indent="    ")]
    return "\n".join(f"{prefix} {line}" for line in lines)


def _ident(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name)


def python_actions(actions: list[Action]) -> str:
    out = ['"""Your driver\'s actions: one function per action, called with (input, context); return the output.',
           "",
           "``context`` is what ``initialize`` gave (endpoints, credentials, trust anchors, software, fixtures). Make",
           "YOUR SOFTWARE do the action (it talks to the sandbox), then answer what it recorded. Until a function is",
           'written it raises NotImplementedError, which the driver answers as a "not implemented" error.',
           "Conventions: `usine wave show WAVE -c CATEGORY` (section 'Driver actions').", '"""', "",
           "from __future__ import annotations", "", "from typing import Any", "", "",
           "def initialize(context: dict[str, Any]) -> None:",
           '    """Configure your software for a new test session (endpoints, client credentials, CA certificates)."""',
           "", "",
           "def reset() -> None:",
           '    """Forget everything of the session that ended: configuration, logged-in users, tokens, cookies, caches,',
           "    local records, open connections and log files (called between scenarios when vendor.toml says",
           '    reuse = true; the next scenario starts with initialize, as in a new process)."""',
           '    raise NotImplementedError("not implemented: reset (keep reuse = false in vendor.toml until it is)")',
           "", ""]
    for a in actions:
        out += [_comment(a, "#"), f"def {_ident(a.name)}(data: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:",
                f'    raise NotImplementedError("not implemented: {a.name}")', "", ""]
    out += ["ACTIONS = {", *[f'    "{a.name}": {_ident(a.name)},' for a in actions], "}", ""]
    return "\n".join(out)


def javascript_actions(actions: list[Action]) -> str:
    out = ["// Your driver's actions: one async function per action, called with (input, context); return the output.",
           "// `context` is what `initialize` gave (endpoints, credentials, trust anchors, software, fixtures). Make",
           "// YOUR SOFTWARE do the action (it talks to the sandbox), then answer what it recorded. Until a function is",
           '// written it throws notImplemented(), which the driver answers as a "not implemented" error.',
           "// Conventions: `usine wave show WAVE -c CATEGORY` (section \"Driver actions\").",
           '"use strict";', "",
           "function notImplemented(action) {",
           "  const err = new Error(`not implemented: ${action}`);",
           "  err.notImplemented = true;",
           "  return err;", "}", "",
           "// Configure your software for a new test session (endpoints, client credentials, CA certificates).",
           "async function initialize(context) {}", "",
           "// Forget everything of the session that ended: configuration, logged-in users, tokens, cookies, caches,",
           "// local records, open connections and log files (called between scenarios when vendor.toml says",
           "// reuse = true; the next scenario starts with initialize, as in a new process).",
           "async function reset() {",
           '  throw notImplemented("reset (keep reuse = false in vendor.toml until it is)");', "}", ""]
    for a in actions:
        out += [_comment(a, "//"), f"async function {_ident(a.name)}(input, context) {{",
                f'  throw notImplemented("{a.name}");', "}", ""]
    out += ["const ACTIONS = {", *[f'  "{a.name}": {_ident(a.name)},' for a in actions], "};", "",
            "module.exports = { initialize, reset, ACTIONS };", ""]
    return "\n".join(out)


#: the values ``vendor.toml`` is generated with, to be replaced by the vendor's own (:func:`placeholders_left`)
PLACEHOLDERS = {"vendor_id": "your-company", "software": "Your Software", "registration_id": "REG-0000"}


def placeholders_left(identity: dict[str, str]) -> list[str]:
    """The keys of a vendor manifest's identity (:meth:`conformity.harness.vendor.Vendor.identity`) still holding the
    driver kit's placeholder: a run works, but its bundle names no one the agency knows."""
    return [key for key, value in PLACEHOLDERS.items() if identity.get(key) == value]


def vendor_toml(lang: str, category: str) -> str:
    command = json.dumps(LANGUAGES[lang][2])
    return f'''# Your software as usine tests it (schema: conformity/schemas/vendor.schema.json). Fill in the placeholders.
format = "usine.vendor/1"
vendor_id = "{PLACEHOLDERS['vendor_id']}"
software = "{PLACEHOLDERS['software']}"
version = "0.1.0"
registration_id = "{PLACEHOLDERS['registration_id']}"
category = "{category}"

[driver]
command = {command}
timeout = 30
# true once reset() in your actions file forgets every state of a session: one process then serves every scenario
reuse = false
'''


def skeleton(lang: str, actions: list[Action], category: str) -> Skeleton:
    if lang not in LANGUAGES:
        raise InputError(f"unknown language {lang!r} (choose {', '.join(LANGUAGES)})", where="--lang")
    driver, actions_file, _ = LANGUAGES[lang]
    body = python_actions(actions) if lang == "python" else javascript_actions(actions)
    return Skeleton({driver: (KIT / lang / driver).read_text(encoding="utf-8"), actions_file: body,
                     "vendor.toml": vendor_toml(lang, category)})


def write_skeleton(folder: Path, sk: Skeleton, *, force: bool = False) -> list[Path]:
    """Write the skeleton's files into ``folder``, all or none; refuses (writing nothing) to overwrite a file unless
    ``force``."""
    if folder.exists() and not folder.is_dir():
        raise InputError("not a folder", file=folder)
    taken = [name for name in sk.files if (folder / name).exists()]
    if taken and not force:
        raise InputError(f"{', '.join(taken)} already exist(s) in {folder}: nothing written (--force overwrites)",
                         file=folder)
    with output_set(folder, sk.files) as temps:  # all or none: a rerun never meets half a kit ("already exists")
        for name, text in sk.files.items():
            write_atomic(temps[name], text)
    return [folder / name for name in sk.files]

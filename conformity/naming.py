"""Whose a name is: a software id lives in its vendor's namespace (``VENDOR.name``).

Labels, revocations and the registry find a software version by its software id; were two vendors able to use
the same one, one vendor's revocation would stop the other's payments and block its next label. So a software id
is its vendor's id, a dot and a name without a dot (``acme.ehr`` is vendor ``acme``'s, ``acme.lab.ehr`` is vendor
``acme.lab``'s and no one else's), checked wherever a software id is taken in: the vendor manifest, the sandbox's
harness tokens, the agency's decision and witnessed runs.

Vendor ids and software ids have one form (:data:`ID_PATTERN`): 2 to 64 lower-case letters, digits, ``_``, ``-``
and dots, a letter or digit first, a dot only between two other characters (no ``acme.``, ``.acme`` or ``ac..me``:
a dot separates a vendor's id from its software's name, and ``acme.`` would own ``acme..ehr``). The JSON Schemas
that take an id (the vendor manifest, the bundle manifest) write the same pattern; a test keeps them equal.
"""

from __future__ import annotations

import re

#: an id's characters and dots, its length apart (2 to 64: :data:`ID_LENGTH`) — for engines without look-ahead, such
#: as pydantic's, which take the length as ``min_length``/``max_length``
ID_SHAPE = r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*$"
ID_LENGTH = (2, 64)
#: a vendor id or a software id (the JSON Schemas' ``pattern`` for them, checked equal by the tests)
ID_PATTERN = rf"^(?=.{{{ID_LENGTH[0]},{ID_LENGTH[1]}}}$)" + ID_SHAPE[1:]
_ID = re.compile(ID_PATTERN)


def id_problem(value: str) -> str | None:
    """Why ``value`` is not a vendor or software id (said for what is wrong: a stray dot, the length, a character),
    or None for a good one."""
    if _ID.fullmatch(value):
        return None
    if value.startswith(".") or value.endswith("."):
        return f"{value!r} {'starts' if value.startswith('.') else 'ends'} with a dot: a dot only separates two parts"
    if ".." in value:
        return f"{value!r} has two dots in a row: a dot only separates two parts"
    if not ID_LENGTH[0] <= len(value) <= ID_LENGTH[1]:
        return f"{value!r} is {len(value)} characters: an id has {ID_LENGTH[0]} to {ID_LENGTH[1]}"
    return (f"{value!r} is not an id: lower-case letters, digits, '_', '-' and '.', starting with a letter or a "
            "digit")


def valid_id(value: object) -> bool:
    """Whether ``value`` is a vendor or software id (:data:`ID_PATTERN`)."""
    return isinstance(value, str) and id_problem(value) is None


def owned_software_id(software_id: str, vendor_id: str) -> bool:
    """Whether ``software_id`` is in ``vendor_id``'s namespace: ``vendor_id``, a dot, then a name with no dot."""
    prefix = f"{vendor_id}."
    return software_id.startswith(prefix) and len(software_id) > len(prefix) and "." not in software_id[len(prefix):]


def ownership_problem(software_id: str, vendor_id: str) -> str:
    """Why ``software_id`` is not ``vendor_id``'s (the message every refusal gives)."""
    return (f"software id {software_id!r} is not in vendor {vendor_id!r}'s namespace: a software id is the vendor's "
            f"id, a dot and a name with no dot ({vendor_id}.name); another vendor's would take that vendor's "
            "software's place in the registry, its labels and revocations")


__all__ = ["ID_LENGTH", "ID_PATTERN", "ID_SHAPE", "id_problem", "owned_software_id", "ownership_problem", "valid_id"]

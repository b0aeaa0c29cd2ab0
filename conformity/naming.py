"""Whose a name is: a software id lives in its vendor's namespace (``VENDOR.name``).

Labels, revocations and the registry find a software version by its software id; were two vendors able to use
the same one, one vendor's revocation would stop the other's payments and block its next label. So a software id
is its vendor's id, a dot and a name without a dot (``acme.ehr`` is vendor ``acme``'s, ``acme.lab.ehr`` is vendor
``acme.lab``'s and no one else's), checked wherever a software id is taken in: the vendor manifest, the sandbox's
harness tokens, the agency's decision and witnessed runs.
"""

from __future__ import annotations


def owned_software_id(software_id: str, vendor_id: str) -> bool:
    """Whether ``software_id`` is in ``vendor_id``'s namespace: ``vendor_id``, a dot, then a name with no dot."""
    prefix = f"{vendor_id}."
    return software_id.startswith(prefix) and len(software_id) > len(prefix) and "." not in software_id[len(prefix):]


def ownership_problem(software_id: str, vendor_id: str) -> str:
    """Why ``software_id`` is not ``vendor_id``'s (the message every refusal gives)."""
    return (f"software id {software_id!r} is not in vendor {vendor_id!r}'s namespace: a software id is the vendor's "
            f"id, a dot and a name with no dot ({vendor_id}.name); another vendor's would take that vendor's "
            "software's place in the registry, its labels and revocations")


__all__ = ["owned_software_id", "ownership_problem"]

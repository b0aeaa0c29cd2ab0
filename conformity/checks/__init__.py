"""Checks: small pure functions over recorded traces, grouped by referential."""

from __future__ import annotations

from conformity.checks.registry import CHECKS, Check, Registry, check, registered_check_ids

__all__ = ["CHECKS", "Check", "Registry", "check", "registered_check_ids"]

"""The sandbox: the national infrastructure imitated, as a real ASGI application.

Services (each sector pack's own, and the core's OpenID Connect provider and directory-style look-ups that a
pack configures) are small routers mounted per test session under ``/s/{session_id}/<service>`` and, for the
production role played for installed software, under ``/prod/<service>``. A recording middleware
is the only source of trace evidence.
"""

from __future__ import annotations

from sandbox.app import create_app
from sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_app"]

"""``usine agency serve``: the labelling agency as a web service and JSON API (FastAPI).

Vendors upload bundles (API token or web form) and follow their submissions; reviewers and deciders
(staff accounts, argon2id passwords, sessions with CSRF protection) review evidence, decide, revoke and
reinstate; the public reads the registry, the signed export and revocation list, wave specifications
and progress; the payment agency pulls label events. Every operation is the one the CLI calls
(``conformity.agency.registry``, ``conformity.agency.submit``); every staff and vendor action is
appended to the audit log. Modules: ``config`` (what a service needs), ``problems`` (RFC 9457
answers), ``accounts`` (accounts, tokens, sessions, login throttling), ``audit``, ``uploads``
(streamed, bounded, verified in the background), ``public`` (registry queries and downloads),
``api`` and ``web`` (routes), ``app`` (assembly).
"""

from conformity.agency.service.app import create_app
from conformity.agency.service.config import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]

"""One database layer for usine's transactional stores: SQLite embedded by default, PostgreSQL for a service.

``connection`` opens a database named by a path (SQLite) or a ``postgresql://`` URL, with the same
small interface on both (``execute`` with ``?`` placeholders, ``write()`` transactions that are
serialised like SQLite's ``BEGIN IMMEDIATE``); ``migrate`` applies ordered migration steps, each
written for both dialects, and records them in ``schema_version``. The agency's registry and the
service's tables live on it; the payment ledger may move to it later.
"""

from conformity.db.connection import Connection, Database, is_url

__all__ = ["Connection", "Database", "is_url"]

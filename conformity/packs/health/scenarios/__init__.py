"""The health pack's scenarios, one module per area (importing this package registers them)."""

from conformity.packs.health.scenarios import auth, directory, documents, identity, messaging, security  # noqa: F401

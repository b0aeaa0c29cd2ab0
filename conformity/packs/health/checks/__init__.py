"""The health pack's checks, one module per referential area (importing this package registers them)."""

from conformity.packs.health.checks import (  # noqa: F401  # noqa: F401
    cda,
    directory,
    docshare,
    docshare_flows,
    exposure,
    messaging,
    patientid,
    pracauth,
    security,
)

"""The health pack's checks, one module per referential area (importing this package registers them)."""

from conformity.packs.health.checks import cda, directory, docshare, docshare_flows, messaging  # noqa: F401
from conformity.packs.health.checks import exposure, patientid, pracauth, security  # noqa: F401

"""The health pack's checks (evaluation, one module per referential area) and their scenarios.

Importing this package registers them all in ``conformity.checks.registry.CHECKS`` and
``conformity.harness.scenario.SCENARIOS``.
"""

from conformity.checks.health import cda, directory, docshare, docshare_flows, messaging  # noqa: F401
from conformity.checks.health import exposure, patientid, pracauth, security  # noqa: F401
from conformity.scenarios.health import auth, documents, identity  # noqa: F401
from conformity.scenarios.health import directory as directory_scenarios  # noqa: F401
from conformity.scenarios.health import messaging as messaging_scenarios  # noqa: F401
from conformity.scenarios.health import security as security_scenarios  # noqa: F401

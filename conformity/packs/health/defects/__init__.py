"""The health pack's trace mutations (one module per area) and the requirements that state one rule twice."""

from conformity.defects import same_rule
from conformity.packs.health.defects import auth, documents, identity, messaging, security  # noqa: F401

same_rule("PATIENTID-001", "ETHICS-003", "both ask that a look-up carry exactly the five strict traits and no other "
          "personal data; the look-up requests are the evidence of both")
same_rule("DOCSHARE-031", "ETHICS-002", "both ask that a document hidden by the patient be marked hidden for its "
          "author, shown to no one else and never forwarded; the listings and the forward are the evidence of both")

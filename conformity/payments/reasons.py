"""The stable reason codes of the refusal report: why an event, an installation, a label or an order was not paid.

Codes are part of the report format: never rename one; add new ones at the end of their group.
"""

from __future__ import annotations

# An input line or event that cannot be read, or is not a data-received event.
MALFORMED = "malformed"                       # not a JSON object on one line (file and line number)
WRONG_ENVELOPE = "wrong-envelope"             # not a CloudEvents 1.0 data-received envelope
INVALID_DATA = "invalid-data"                 # `data` breaks the data-received schema, or its kind is not its pack's
# The event's identity: (source, id) is unique per CloudEvents 1.0.
DUPLICATE_EVENT = "duplicate-event"           # already recorded, same content: nothing new
CONFLICTING_DUPLICATE = "conflicting-duplicate"  # same source and id, different content
# The data's identity: what it means (its sha256), never the event that carries it.
DUPLICATE_DATA = "duplicate-data"             # same data (sha256) from the same installation as an event counted already
# The event's wave and time.
UNKNOWN_WAVE = "unknown-wave"                 # the wave is not in the catalog
FUTURE_DATED = "future-dated"                 # later than the run's as-of time (looked at again next run)
OUTSIDE_WINDOW = "outside-window"             # outside the wave's funding window
# The label that must cover the event.
NO_LABEL = "no-label"                         # no valid label for this vendor, software, wave and category
LABEL_INVALID = "label-invalid"               # only forged, unsigned or unreadable labels claim it (also: the label file)
VERSION_NOT_COVERED = "version-not-covered"   # labels exist but none covers this software version
LABEL_REVOKED = "label-revoked"               # the covering label was revoked before the event
LABEL_EXPIRED = "label-expired"               # the covering label had expired at the event's time
LABEL_NOT_YET_VALID = "label-not-yet-valid"   # the event predates the covering label
# The funding rule.
NO_PRICE = "no-price"                         # the wave has no price for this category and site size
NOT_PROOF_OF_USE = "not-proof-of-use"         # kind or document type not counted by the wave's proof-of-use rule
INCONSISTENT_INSTALLATION = "inconsistent-installation"  # vendor, category or site size differs from the installation's
# Installations.
THRESHOLD_NOT_MET = "threshold-not-met"       # not enough counted events within the rule's days
CAP_REACHED = "cap-reached"                   # the software's cap for the wave would be exceeded
# Orders.
NO_BANK_DETAILS = "no-bank-details"           # paid in the ledger, order held until the vendor's IBAN/BIC is known
BANK_DETAILS_CHANGED = "bank-details-changed"  # paid in the ledger, order held: the payees file gives the vendor
#                                             another IBAN than its last order went to, not confirmed (--confirm-iban)
# Authentication: what the infrastructure's signed segments prove (checked first, before the line is read as an
# event; see conformity.payments.authenticate). A refused line is never recorded in the ledger.
EVENT_UNSIGNED = "event-unsigned"             # no signed segment covers the line: no sidecar, a gap, or a tail not sealed
EVENT_SIGNATURE_INVALID = "event-signature-invalid"  # its segment is not validly signed by a trusted infrastructure key
SEGMENT_MISMATCH = "event-segment-mismatch"   # its segment's lines do not hash to the signed value (edited, added,
                                              # removed or reordered lines; or lines shifted by such a change earlier)
CHAIN_BROKEN = "event-chain-broken"           # its segment does not follow the one before (segments removed, reordered,
                                              # replayed or spliced from another file)
SOURCE_UNTRUSTED = "source-untrusted"         # the event's source is not one its signing key (and segment) vouches for

EVENT_REASONS = (MALFORMED, WRONG_ENVELOPE, INVALID_DATA, DUPLICATE_EVENT, CONFLICTING_DUPLICATE, UNKNOWN_WAVE,
                 FUTURE_DATED, OUTSIDE_WINDOW, NO_LABEL, LABEL_INVALID, VERSION_NOT_COVERED, LABEL_REVOKED,
                 LABEL_EXPIRED, LABEL_NOT_YET_VALID, NO_PRICE, NOT_PROOF_OF_USE, INCONSISTENT_INSTALLATION,
                 DUPLICATE_DATA)
AUTHENTICATION_REASONS = (EVENT_UNSIGNED, EVENT_SIGNATURE_INVALID, SEGMENT_MISMATCH, CHAIN_BROKEN, SOURCE_UNTRUSTED)
INSTALLATION_REASONS = (THRESHOLD_NOT_MET, CAP_REACHED)
ALL_REASONS = EVENT_REASONS + INSTALLATION_REASONS + (NO_BANK_DETAILS, BANK_DETAILS_CHANGED) + AUTHENTICATION_REASONS

#: Event outcomes stored in the ledger besides refusal codes.
COUNTED = "counted"              # counts towards its installation's proof of use
AFTER_PAYMENT = "after-payment"  # valid, but its installation was already paid

#: Refusals before judgement (not recorded in the ledger: looked at again when presented again). Every other refusal
#: of an event is recorded with the run that judged it, and judged again (with that run's labels) when a later run
#: presents the event again; only COUNTED and AFTER_PAYMENT are settled (presented again: DUPLICATE_EVENT).
NOT_RECORDED = frozenset({MALFORMED, WRONG_ENVELOPE, INVALID_DATA, UNKNOWN_WAVE, FUTURE_DATED,
                          *AUTHENTICATION_REASONS})

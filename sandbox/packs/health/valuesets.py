"""The value sets (jeux de valeurs) the shared record publishes for the coded submission metadata.

Served at ``GET /s/{sid}/dmp/value-sets`` for the software to pick its codes from (DOCSHARE-016).
The referential keeps the same codes as the ``parameters`` of DOCSHARE-016 (the checks read them
there, pinned with the referential version); ``tests/sandbox/test_documents_sandbox.py`` keeps both equal.
Model values in the style of the CI-SIS value sets, not the official ones.
"""

from __future__ import annotations

from typing import Any

VALUE_SETS: dict[str, dict[str, str]] = {
    "class_code": {"10": "Compte rendu", "11": "Synthèse", "13": "Traitement, dispensation"},
    "format_code": {"urn:ihe:iti:xds-sd:pdf:2008": "Document à corps non structuré (PDF)",
                    "urn:asip:ci-sis:cr-bio:2023": "Compte rendu de biologie structuré (CR-BIO)"},
    "healthcare_facility_type": {"SA01": "Établissement public de santé", "SA02": "Établissement privé",
                                 "SA05": "Centre de santé", "SA07": "Cabinet individuel", "SA08": "Cabinet de groupe",
                                 "SA29": "Laboratoire de biologie médicale", "SA33": "Officine",
                                 "SA34": "Cabinet de radiologie"},
    "practice_setting": {"ETABLISSEMENT": "Établissement de santé", "MEDECINE_GENERALE": "Médecine générale",
                         "BIOLOGIE": "Biologie médicale", "RADIOLOGIE": "Radiologie", "PHARMACIE": "Pharmacie",
                         "SOINS_INFIRMIERS": "Soins infirmiers"},
    "language_code": {"fr-FR": "Français (France)"},
    "author_role": {"10": "Médecin", "21": "Pharmacien", "60": "Infirmier"},
    "author_specialty": {"SM54": "Médecine générale", "SM26": "Biologie médicale", "SM44": "Radiologie"},
}

#: DOCSHARE 2.0: the practiceSettingCode that goes with the author's specialty (or profession, without one)
PRACTICE_SETTING_BY_SPECIALTY = {"SM54": "MEDECINE_GENERALE", "SM26": "BIOLOGIE", "SM44": "RADIOLOGIE"}
PRACTICE_SETTING_BY_PROFESSION = {"21": "PHARMACIE", "60": "SOINS_INFIRMIERS", "10": "ETABLISSEMENT"}

#: the care-site organisation types of the directory → healthcareFacilityTypeCode
FACILITY_TYPE_BY_ORGANISATION = {"355": "SA01", "611": "SA29", "620": "SA33", "124": "SA05", "603": "SA34"}


def published() -> dict[str, Any]:
    """The document the service answers: every value set, and the mappings between them."""
    return {"value_sets": VALUE_SETS, "practice_setting_by_specialty": PRACTICE_SETTING_BY_SPECIALTY,
            "practice_setting_by_profession": PRACTICE_SETTING_BY_PROFESSION,
            "facility_type_by_organisation": FACILITY_TYPE_BY_ORGANISATION}

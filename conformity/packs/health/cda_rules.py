"""The model CI-SIS Schematron rules (DOCSHARE 2.0, DOCSHARE-027): published by the sandbox, run by the checks.

ISO Schematron, one pattern for the header shared by every document type and one per type (rule
context on the document code). Assertions with ``role="error"`` are error level; ``role="warning"``
ones are advice. The sandbox serves this text at ``GET /s/{sid}/dmp/schematron``; the check
``cda.schematron_valid`` runs it (lxml's ISO Schematron, compiled once) on every submitted document.
This is a model of the agency's Schematron, not the official CI-SIS rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree, isoschematron

SVRL = "http://purl.oclc.org/dsdl/svrl"
_LOCAL_NAME = re.compile(r"\*\[local-name\(\)='([^']+)'(?: and namespace-uri\(\)='[^']*')?\]")

SCHEMATRON = """<?xml version="1.0" encoding="UTF-8"?>
<sch:schema xmlns:sch="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt">
  <sch:title>usine model CI-SIS rules (DOCSHARE 2.0)</sch:title>
  <sch:ns prefix="cda" uri="urn:hl7-org:v3"/>
  <sch:ns prefix="xsi" uri="http://www.w3.org/2001/XMLSchema-instance"/>
  <sch:pattern id="header">
    <sch:rule context="/cda:ClinicalDocument">
      <sch:assert id="H01" role="error" test="cda:realmCode[@code='FR']">realmCode must be FR.</sch:assert>
      <sch:assert id="H02" role="error" test="normalize-space(cda:title) != ''">title must not be empty.</sch:assert>
      <sch:assert id="H03" role="error" test="cda:languageCode[@code='fr-FR']">languageCode must be fr-FR.</sch:assert>
      <sch:assert id="H04" role="error" test="cda:setId[@root] and cda:versionNumber[@value &gt;= 1]">setId and a versionNumber of 1 or more are required.</sch:assert>
      <sch:assert id="H05" role="error" test="cda:recordTarget/cda:patientRole/cda:patient/cda:name/cda:family and cda:recordTarget/cda:patientRole/cda:patient/cda:birthTime[@value]">the patient needs a family name and a birthTime.</sch:assert>
      <sch:assert id="H06" role="error" test="cda:recordTarget/cda:patientRole/cda:patient/cda:administrativeGenderCode[@code='M' or @code='F' or @code='U' or @code='UN']">the patient needs an administrativeGenderCode (M, F, U or UN).</sch:assert>
      <sch:assert id="H07" role="error" test="count(cda:author[not(cda:time/@value)]) = 0">every author needs a time.</sch:assert>
      <sch:assert id="H08" role="error" test="count(cda:author/cda:assignedAuthor[not(cda:assignedPerson/cda:name/cda:family)]) = 0">every assignedAuthor needs an assignedPerson with a family name.</sch:assert>
      <sch:assert id="H09" role="error" test="cda:custodian/cda:assignedCustodian/cda:representedCustodianOrganization/cda:id[@root='1.2.250.1.71.4.2.2' and string-length(@extension) = 9]">the custodian organisation needs its FINESS-like id (root 1.2.250.1.71.4.2.2, 9 characters).</sch:assert>
      <sch:assert id="H10" role="error" test="count(cda:relatedDocument[@typeCode='RPLC']) = 0 or cda:versionNumber/@value &gt; 1">a replacement (relatedDocument RPLC) needs a versionNumber above 1.</sch:assert>
      <sch:assert id="H11" role="warning" test="cda:author/cda:assignedAuthor/cda:code">the author's profession (assignedAuthor/code) should be given.</sch:assert>
    </sch:rule>
  </sch:pattern>
  <sch:pattern id="lab-report">
    <sch:rule context="/cda:ClinicalDocument[cda:code/@code='11502-2']/cda:component/cda:structuredBody//cda:observation">
      <sch:assert id="B01" role="error" test="cda:statusCode[@code='completed']">a lab result observation needs statusCode completed.</sch:assert>
      <sch:assert id="B02" role="error" test="cda:effectiveTime[@value]">a lab result observation needs an effectiveTime.</sch:assert>
      <sch:assert id="B03" role="error" test="cda:code[@codeSystem='2.16.840.1.113883.6.1']">a lab result is coded in LOINC.</sch:assert>
    </sch:rule>
  </sch:pattern>
  <sch:pattern id="dispensation">
    <sch:rule context="/cda:ClinicalDocument[cda:code/@code='60593-1']">
      <sch:assert id="D01" role="error" test="cda:author/cda:assignedAuthor/cda:code[@code='21']">a dispensation record is authored by a pharmacist (profession code 21).</sch:assert>
    </sch:rule>
  </sch:pattern>
</sch:schema>
"""

#: DOCSHARE-027 counts these roles as error level (an assert without a role is an error too)
ERROR_ROLES = ("", "error", "fatal")


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed assertion: rule id, role, where (XPath), and its text."""

    rule: str
    role: str
    location: str
    text: str

    @property
    def is_error(self) -> bool:
        return self.role in ERROR_ROLES


@lru_cache(maxsize=1)
def _compiled() -> isoschematron.Schematron:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    schema = etree.fromstring(SCHEMATRON.encode(), parser)
    return isoschematron.Schematron(schema, store_report=True)


def run(root: etree._Element) -> list[Failure]:
    """Every failed assertion of the rules on a (safely parsed) ClinicalDocument, in document order."""
    schematron = _compiled()
    schematron.validate(root)
    report = schematron.validation_report
    out = []
    for failed in report.iter(f"{{{SVRL}}}failed-assert"):
        text = " ".join("".join(failed.itertext()).split())
        location = _LOCAL_NAME.sub(r"\1", failed.get("location", ""))
        out.append(Failure(failed.get("id", ""), failed.get("role", ""), location, text))
    return out

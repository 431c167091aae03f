"""Standard exports: FHIR R4 (a Bundle per patient, NDJSON in bulk), CSV for admins, and the
accounting of disclosures (HIPAA 164.528) read from the audit trail."""

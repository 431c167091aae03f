"""Patients: identity, contact, clinical background, consent."""

"""Restricted records: a care team per restricted patient, and audited break-glass for other clinicians."""

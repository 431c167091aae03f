"""One home for PHQ-9 and GAD-7 scores, taken at the checklist or by phone."""

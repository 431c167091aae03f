"""At the chair: dose and controlled-substance record, vitals and alerts, discharge."""

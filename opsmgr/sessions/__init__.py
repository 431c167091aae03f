"""The infusion session aggregate: its root model, the one loader, the signed record and its lock."""

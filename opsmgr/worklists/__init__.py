"""Worklists: what each role's home lists across sessions."""

"""The pre-session checklist, its findings, physician overrides and the start gate."""

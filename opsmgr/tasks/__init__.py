"""The physician task list: same-day reviews and calls that checklist findings ask for."""

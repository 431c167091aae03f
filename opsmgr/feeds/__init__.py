"""iCalendar feeds of the schedule for staff calendars, behind revocable per-user tokens."""

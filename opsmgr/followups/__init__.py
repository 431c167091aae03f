"""Follow-ups: the calls, PHQ-9 requests, physician reviews, REMS forms and note reminders a patient's
sessions call for (planned by opsmgr.rules.followups), and the coordinator's worklist that works them."""

"""Outgoing email and SMS: SMTP, the Twilio Messages API, or files in the outbox folder.

The delivery engine (opsmgr.outbox) calls the senders from ``channels``; nothing here touches
the database. Recipients and bodies never reach the log: only message ids, kinds and error codes.
"""

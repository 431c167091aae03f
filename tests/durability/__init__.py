"""Helpers of tests/test_durability.py: concurrent writers on SQLite, and a server killed under load."""

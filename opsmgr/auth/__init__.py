"""Staff accounts, login, server-side sessions and roles."""

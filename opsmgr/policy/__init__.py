"""The clinical policy in the database: versioned, edited by admins, every change audited."""

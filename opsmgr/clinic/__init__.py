"""Clinic set-up for admins: protocols (versioned), chairs, opening hours, scheduling settings."""

"""Small shared plumbing: clock, database types, request helpers, errors, template filters."""

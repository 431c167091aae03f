"""PDF reports: plain data builders, one renderer (Jinja → WeasyPrint, PDF/A-3b) and the stored documents."""

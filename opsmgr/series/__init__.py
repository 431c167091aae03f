"""Protocols (versioned) and the infusion series ordered from them."""

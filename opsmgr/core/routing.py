"""The `int` URL converter every route uses: a database id, 1 to 2**31 - 1, or the address does not exist.

Werkzeug's own accepts any length of digits; a larger id then reached the database, where SQLite raises
OverflowError past 2**63 - 1 and PostgreSQL "integer out of range" past 2**31 - 1: a 500, not a 404.
"""
from werkzeug.routing import IntegerConverter

#: The largest id an id column holds: every primary key is an INTEGER, 32 bits on PostgreSQL.
LARGEST_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:name>`: a whole number from 1 to LARGEST_ID (a route may still narrow it with min and max)."""

    def __init__(self, map, fixed_digits=0, min=1, max=LARGEST_ID, signed=False):  # noqa: A002 - werkzeug's names
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register(app):
    """Install IdConverter as `int` before any blueprint adds a rule."""
    app.url_map.converters["int"] = IdConverter

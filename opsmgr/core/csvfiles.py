"""CSV files a spreadsheet opens safely: every cell the app writes goes through safe_cell and one writer.

OWASP's CSV injection guidance: a cell beginning = + - @ tab or CR is run as a formula; so is one that
begins so after leading spaces or quotes, or after a field separator that a spreadsheet set to another
locale splits on (`;=1` opens as an empty cell and `=1`). Such a cell gets a leading apostrophe (shown as
text), and the writer quotes every cell, so a separator inside a cell never starts a new one.
"""
import csv
import re
from datetime import date

#: A formula start: at the beginning (after spaces, quotes or separators), or after a separator or line break.
FORMULA = re.compile(r"""^[\s"';,|]*[=+\-@\t\r]|[;,|\t\r\n][\s"']*[=+\-@]""")


def safe_cell(value):
    """A cell's text that no spreadsheet runs as a formula; None is empty, dates are ISO 8601."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, date) else str(value)
    return "'" + text if FORMULA.search(text) else text


def writer(buffer):
    """A csv writer that quotes every cell and ends rows with CRLF (RFC 4180)."""
    return csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")


def write_rows(buffer, header, rows):
    """The header, then each row's cells through safe_cell; returns how many rows were written."""
    out = writer(buffer)
    out.writerow(header)
    count = 0
    for row in rows:
        out.writerow([safe_cell(value) for value in row])
        count += 1
    return count

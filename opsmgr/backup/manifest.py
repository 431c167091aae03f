"""What a backup promises: per-table row counts and checksums, each stored PDF's SHA-256, the schema
revision and the keys' fingerprints (never the keys). Computed from the snapshot that was saved, so a
restore can be checked against it row for row."""
import hashlib
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from sqlalchemy import column, inspect, select, table

FORMAT = 1
#: Where stored PDFs live: their bytes and the SHA-256 recorded when they were made.
DOCUMENTS = table("report_document", column("document_id"), column("sha256"), column("bytes"))


def encode_value(value):
    """A JSON form for the values json cannot write (for checksums only: bytes become their SHA-256)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat()  # the same instant whatever the connection's time zone
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    raise TypeError(f"no checksum form for {type(value).__name__}")


def table_digests(conn, columns=None):
    """{table: {"rows": n, "sha256": hex}} for every table, rows in primary-key order, values as the driver
    returns them (so compare like with like: SQLite with SQLite, PostgreSQL with PostgreSQL). `columns`
    ({table: [column names]}) narrows it to those tables and columns."""
    inspector = inspect(conn)
    digests = {}
    for name in sorted(inspector.get_table_names()):
        if columns is not None and name not in columns:
            continue
        names = columns[name] if columns is not None else [info["name"] for info in inspector.get_columns(name)]
        keys = inspector.get_pk_constraint(name).get("constrained_columns") or names
        rows = table(name, *(column(each) for each in names))
        query = select(rows).order_by(*(rows.c[key] for key in keys))
        digest, count = hashlib.sha256(), 0
        for row in conn.execute(query.execution_options(yield_per=1000)):
            digest.update(json.dumps(list(row), default=encode_value, sort_keys=True, ensure_ascii=False).encode())
            digest.update(b"\n")
            count += 1
        digests[name] = {"rows": count, "sha256": digest.hexdigest()}
    return digests


def document_hashes(conn):
    """{document id: {"sha256": of the stored bytes, "recorded": the hash stored with them}}."""
    if "report_document" not in inspect(conn).get_table_names():
        return {}
    query = select(DOCUMENTS).order_by(DOCUMENTS.c.document_id).execution_options(yield_per=50)
    return {row.document_id: {"sha256": hashlib.sha256(bytes(row.bytes)).hexdigest(), "recorded": row.sha256}
            for row in conn.execute(query)}


def schema_revision(conn):
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(select(column("version_num")).select_from(table("alembic_version"))).scalar()


def key_fingerprint(name, value):
    """A short, labelled SHA-256 of a key: enough to tell two keys apart, useless to rebuild one."""
    if not value:
        return None
    return hashlib.sha256(f"opsmgr key fingerprint\0{name}\0{value}".encode()).hexdigest()[:16]


def signing_fingerprint(app):
    """SHA-256 of the certificate that signs report PDFs, or None while there is none yet (never creates one)."""
    from opsmgr.reports.signing import SELF_SIGNED_FILENAME, SigningKeyError, signing_identity

    if not app.config.get("SIGNING_P12") and not (Path(app.instance_path) / SELF_SIGNED_FILENAME).exists():
        return None
    try:
        return hashlib.sha256(signing_identity(app).certificate.dump()).hexdigest()
    except SigningKeyError:
        return None


def fingerprints(app):
    return {
        "secret_key": key_fingerprint("secret_key", app.config.get("SECRET_KEY")),
        "audit_key": key_fingerprint("audit_key", app.config.get("AUDIT_KEY")),
        "signing_certificate": signing_fingerprint(app),
    }


KEY_NAMES = {
    "secret_key": "secret key (OPSMGR_SECRET_KEY or instance/secret_key)",
    "audit_key": "audit key (OPSMGR_AUDIT_KEY or instance/audit_key)",
    "signing_certificate": "PDF signing key (OPSMGR_SIGNING_P12 or instance/signing_key.pem)",
}

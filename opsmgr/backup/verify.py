"""After a restore: check the database against the backup's manifest and the running configuration."""
from dataclasses import dataclass, field

from flask import current_app

from opsmgr.audit.anchor import ANCHOR_FILE, read_anchors
from opsmgr.audit.service import verify_chain
from opsmgr.backup.databases import snapshot_contents
from opsmgr.backup.manifest import KEY_NAMES, fingerprints
from opsmgr.extensions import db


@dataclass
class RestoreReport:
    manifest: dict
    #: (what was checked, passed, detail), in the order they ran.
    checks: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    seconds: float = 0.0
    audited: bool = False

    @property
    def ok(self):
        return all(passed for _, passed, _ in self.checks)

    def check(self, name, passed, detail):
        self.checks.append((name, passed, detail))


def plural(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"


def verify(report, app, work, kind, progress):
    """Add each check to `report`: integrity, schema revision, tables, audit chain, stored PDFs, keys."""
    manifest = report.manifest
    progress("Verifying …")
    with db.engine.connect() as conn:
        if kind == "sqlite":
            checked = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
            report.check("integrity_check", checked == ["ok"], "ok" if checked == ["ok"] else "; ".join(checked[:5]))
        contents = snapshot_contents(conn)
    _compare_revision(report, contents["schema_revision"])
    _compare_tables(report, manifest["tables"], contents["tables"])
    anchors = read_anchors(work / ANCHOR_FILE)
    result = verify_chain(app.config["AUDIT_KEY"], anchors=anchors)
    db.session.remove()
    report.check("audit chain", result.ok,
                 f"{plural(result.checked, 'event')} intact, {plural(len(anchors), 'external anchor')} match"
                 if result.ok else
                 f"event {result.bad_event_id}: {result.problem}")
    _compare_documents(report, manifest["documents"], contents["documents"])
    _compare_keys(report, manifest["keys"], fingerprints(app))


def _compare_revision(report, restored):
    expected = report.manifest["schema_revision"]
    report.check("schema revision", restored == expected, f"{restored}" if restored == expected else
                 f"{restored}, but the backup was at {expected}")
    heads = _code_heads()
    if restored is not None and heads and restored not in heads:
        report.warnings.append(f"The restored schema is at {restored} and this code is at {', '.join(heads)}: "
                               "run `flask --app app db upgrade`.")


def _code_heads():
    from alembic.script import ScriptDirectory

    migrate = current_app.extensions.get("migrate")
    if migrate is None:
        return ()
    return tuple(ScriptDirectory.from_config(migrate.migrate.get_config()).get_heads())


def _compare_tables(report, expected, restored):
    wrong = sorted(name for name in expected.keys() | restored.keys() if expected.get(name) != restored.get(name))
    rows = sum(each["rows"] for each in restored.values())
    detail = (f"{len(expected)} tables, {rows} rows: counts and checksums match" if not wrong else
              "differ in " + ", ".join(_table_difference(name, expected.get(name), restored.get(name))
                                       for name in wrong[:10]))
    report.check("tables", not wrong, detail)


def _table_difference(name, expected, restored):
    if expected is None:
        return f"{name} (not in the backup)"
    if restored is None:
        return f"{name} (missing)"
    if expected["rows"] != restored["rows"]:
        return f"{name} ({restored['rows']} rows, backup has {expected['rows']})"
    return f"{name} (checksum)"


def _compare_documents(report, expected, restored):
    wrong = sorted(document_id for document_id in expected.keys() | restored.keys()
                   if document_id not in restored or document_id not in expected
                   or restored[document_id]["sha256"] != expected[document_id]["sha256"]
                   or restored[document_id]["sha256"] != restored[document_id]["recorded"])
    report.check("stored PDFs", not wrong,
                 f"{plural(len(restored), 'document')}, every SHA-256 matches" if not wrong else
                 f"{len(wrong)} of {len(expected)} documents do not match their SHA-256: {', '.join(wrong[:10])}")


def _compare_keys(report, expected, running):
    differ = [name for name in KEY_NAMES if expected.get(name) != running.get(name)]
    for name in differ:
        consequence = {
            "audit_key": "the audit chain verifies only with the audit key the backup was made with",
            "secret_key": "staff must sign in again, and what the secret key protects cannot be read",
            "signing_certificate": "PDFs signed before are not recognised as this clinic's signatures",
        }[name]
        report.warnings.append(f"The {KEY_NAMES[name]} differs from the one the backup was made with: "
                               f"{consequence}. Put the original key in place.")
    report.check("key fingerprints", not differ,
                 "secret, audit and signing keys match" if not differ else
                 "differ: " + ", ".join(name.replace("_", " ") for name in differ))

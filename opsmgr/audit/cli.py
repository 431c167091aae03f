"""`flask audit verify`: walk the hash chain and say OK or where it breaks."""
import click
from flask import current_app
from flask.cli import AppGroup

from opsmgr.audit.anchor import anchor_path, read_anchors
from opsmgr.audit.service import verify_chain
from opsmgr.core import reads

audit = AppGroup("audit", help="Audit trail tools.")


@audit.command("verify")
def verify():
    """Verify the audit trail's hash chain; exit status 1 when it was tampered with."""
    anchors = read_anchors(anchor_path(current_app.instance_path))
    with reads.reading():  # never holds SQLite's write lock while it walks the chain
        result = verify_chain(current_app.config["AUDIT_KEY"], anchors=anchors)
    if result.ok:
        click.echo(f"OK: {result.checked} audit events, chain intact; {len(anchors)} external anchors match.")
        return
    click.echo(f"TAMPERED: event {result.bad_event_id}: {result.problem} "
               f"({result.checked} events verified before it).")
    raise SystemExit(1)

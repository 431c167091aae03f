"""Chain-head anchors outside the database catch a cut tail even when the head row is rewritten."""
import os
import stat

from sqlalchemy import select, text

from opsmgr.audit.anchor import anchor_path, read_anchors
from opsmgr.audit.jobs import anchor_chain_head
from opsmgr.audit.models import AuditEvent, AuditHead
from opsmgr.audit.service import verify_chain
from opsmgr.extensions import db
from tests.test_audit import disable_append_only_guard, seed_chain


def cut_tail_and_rewrite_head(app, keep):
    """What an attacker with database access could do: drop the newest rows, fix up the head."""
    with app.app_context():
        disable_append_only_guard()
        db.session.execute(text("DELETE FROM audit_event WHERE id > :keep"), {"keep": keep})
        survivor = db.session.scalar(select(AuditEvent.row_hash).where(AuditEvent.id == keep))
        db.session.execute(text("UPDATE audit_head SET last_event_id = :keep, last_hash = :h"),
                           {"keep": keep, "h": survivor})
        db.session.commit()


def test_the_anchor_job_appends_the_head_once_per_change_to_a_private_file(app, clock):
    seed_chain(app, 5)
    with app.app_context():
        anchor_chain_head()
        anchor_chain_head()
        path = anchor_path(app.instance_path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        head = db.session.get(AuditHead, 1)
        assert [(a.event_id, a.row_hash) for a in read_anchors(path)] == [(5, head.last_hash)]
    seed_chain(app, 2, action_prefix="more")
    with app.app_context():
        anchor_chain_head()
        assert [a.event_id for a in read_anchors(anchor_path(app.instance_path))] == [5, 7]


def test_a_cut_tail_with_a_rewritten_head_is_caught_only_by_the_anchor(app, runner):
    seed_chain(app, 20)
    with app.app_context():
        anchor_chain_head()
    cut_tail_and_rewrite_head(app, keep=12)
    with app.app_context():
        assert verify_chain(app.config["AUDIT_KEY"]).ok, "inside the database alone the cut is invisible"
        result = verify_chain(app.config["AUDIT_KEY"], anchors=read_anchors(anchor_path(app.instance_path)))
    assert not result.ok and "cut off" in result.problem
    cli = runner.invoke(args=["audit", "verify"])
    assert cli.exit_code == 1 and "TAMPERED" in cli.output


def test_cli_reports_the_anchors_it_checked(app, runner):
    seed_chain(app, 3)
    with app.app_context():
        anchor_chain_head()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0
    assert "1 external anchors match" in result.output

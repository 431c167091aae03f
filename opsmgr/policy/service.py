"""Read the current clinical policy and revise it as a new version."""
from sqlalchemy import func, select

from opsmgr.audit.service import record
from opsmgr.extensions import db
from opsmgr.policy.models import PolicyVersion
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy


class PolicyError(ValueError):
    pass


def current_version():
    """The newest stored version (the migration stores version 1 with the defaults)."""
    return db.session.scalar(select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1))


def current_policy():
    """(version number, ClinicalPolicy) in force now; the defaults if nothing is stored."""
    row = current_version()
    if row is None:
        return 0, DEFAULT_POLICY
    return row.version, ClinicalPolicy.from_dict(row.values)


def policy_for(version):
    """The policy a past decision was made under."""
    row = db.session.scalar(select(PolicyVersion).where(PolicyVersion.version == version))
    return ClinicalPolicy.from_dict(row.values) if row else None


def revise_policy(values, *, based_on, note, actor, now):
    """Store a new version with `values` changed; refuse an edit made on an older version."""
    latest, policy = current_policy()
    if based_on != latest:
        raise PolicyError("Another administrator saved a newer policy while you were editing. "
                          "Nothing was saved; review the current values and change them again.")
    merged = {**policy.to_dict(), **values}
    new_policy = ClinicalPolicy.from_dict(merged)
    changes = {name: [old, merged[name]] for name, old in policy.to_dict().items() if merged[name] != old}
    if not changes:
        return None
    version = (db.session.scalar(select(func.max(PolicyVersion.version))) or 0) + 1
    row = PolicyVersion(version=version, values=new_policy.to_dict(), note=note.strip()[:300], created_at=now,
                        created_by_id=actor.user_id)
    db.session.add(row)
    db.session.flush()
    record("policy.revised", actor=actor, now=now, object_type="policy_version", object_id=version,
           details={name: [str(old), str(new)] for name, (old, new) in changes.items()})
    return row


def history():
    return db.session.scalars(select(PolicyVersion).order_by(PolicyVersion.version.desc())).all()

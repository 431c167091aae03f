"""Read the current clinical policy and revise it as a new version."""
from sqlalchemy import func, select

from opsmgr.audit.service import record
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.policy.models import PolicyVersion
from opsmgr.rules.findings import Problem
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy
from opsmgr.rules.severities import SEVERITY_RULES, severity_for, severity_problems, stored_choices


class PolicyError(DomainError):
    """Nothing saved: choices outside the rules' limits (`problems`, each a Problem whose field is a
    finding code), or without problems the message alone (a Problem of the whole form)."""

    def __init__(self, message, problems=()):
        super().__init__(problems or [Problem(None, message)], message=message)


class StalePolicy(PolicyError):
    """Another administrator saved a newer version after this form was opened."""


STALE_MESSAGE = ("Another administrator saved a newer policy while you were editing. "
                 "Nothing was saved; review the current values and change them again.")


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
    """Store a new version with `values` changed (thresholds, and `severities` {code: severity value});
    refuse an edit made on an older version, or a severity outside the limits the rules declare."""
    latest, policy = current_policy()
    if based_on != latest:
        raise StalePolicy(STALE_MESSAGE)
    chosen = dict(values.get("severities") or {})
    problems = severity_problems(chosen)
    if problems:
        raise PolicyError("Nothing was saved: a severity is outside the limits the rules allow.", problems)
    thresholds = {name: value for name, value in values.items() if name != "severities"}
    new_policy = ClinicalPolicy.from_dict({**policy.to_dict(), **thresholds,
                                           "severities": stored_choices({**policy.severities, **chosen})})
    changes = _changes(policy, new_policy)
    if not changes:
        return None
    version = (db.session.scalar(select(func.max(PolicyVersion.version))) or 0) + 1
    row = PolicyVersion(version=version, values=new_policy.to_dict(), note=note.strip()[:300], created_at=now,
                        created_by_id=actor.user_id)
    db.session.add(row)
    db.session.flush()
    record("policy.revised", actor=actor, now=now, object_type="policy_version", object_id=version,
           details=changes)
    return row


def _changes(old, new):
    """{threshold: [old, new]} and {"severity:CODE": [old, new]}, as text, for what differs."""
    old_values, new_values = old.to_dict(), new.to_dict()
    changes = {name: [str(old_values[name]), str(new_values[name])] for name in old_values
               if name != "severities" and new_values[name] != old_values[name]}
    for code in SEVERITY_RULES:
        was, now_is = severity_for(code, old), severity_for(code, new)
        if was != now_is:
            changes[f"severity:{code}"] = [was.value, now_is.value]
    return changes


def history():
    return db.session.scalars(select(PolicyVersion).order_by(PolicyVersion.version.desc())).all()

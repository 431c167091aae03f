"""Read the current clinical policy and revise it as a new version."""
from sqlalchemy import func, select

from opsmgr.audit.service import record
from opsmgr.core.edits import EditConflict, Saved, audit_details, saved_by_user
from opsmgr.core.merge import merge_edit
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.policy.models import PolicyVersion
from opsmgr.rules.findings import Problem
from opsmgr.rules.policy import DEFAULT_POLICY, THRESHOLDS, ClinicalPolicy
from opsmgr.rules.severities import SEVERITY_RULES, severity_for, severity_problems, stored_choices


class PolicyError(DomainError):
    """Nothing saved: choices outside the rules' limits (`problems`, each a Problem whose field is a
    finding code), or without problems the message alone (a Problem of the whole form)."""

    def __init__(self, message, problems=()):
        super().__init__(problems or [Problem(None, message)], message=message)


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


def revise_policy(values, *, based_on, note, pending=(), choices=None, actor, now):
    """Store a new version with `values` changed (thresholds, and `severities` {code: severity value}),
    merged with any version saved since version `based_on`: a value only that save changed keeps it;
    one both changed differently refuses the edit (EditConflict, keyed by threshold name or finding
    code) until `choices` settle it. A severity outside the limits the rules declare is refused."""
    latest, policy = current_policy()
    chosen = dict(values.get("severities") or {})
    problems = severity_problems(chosen)
    if problems:
        raise PolicyError("Nothing was saved: a severity is outside the limits the rules allow.", problems)
    base_policy = policy if based_on == latest else policy_for(based_on)
    theirs = _flat(policy)
    mine = {name: value for name, value in values.items() if name != "severities"} | chosen
    merge = merge_edit(mine, theirs, base=_flat(base_policy) if base_policy else {}, pending=pending,
                       choices=choices)
    saved_by = None
    if merge.conflicts or merge.taken_from_theirs:
        row = current_version()
        saved_by = saved_by_user(row.created_by_id if row else None, row.created_at if row else None, actor)
    if merge.conflicts:
        raise EditConflict(merge, theirs, saved_by, version=latest)
    thresholds = {name: merge.values[name] for name in THRESHOLDS}
    severities = {code: merge.values[code] for code in SEVERITY_RULES}
    new_policy = ClinicalPolicy.from_dict({**policy.to_dict(), **thresholds,
                                           "severities": stored_choices({**policy.severities, **severities})})
    changes = _changes(policy, new_policy)
    if not changes:
        return Saved(None, merge, saved_by)
    version = (db.session.scalar(select(func.max(PolicyVersion.version))) or 0) + 1
    row = PolicyVersion(version=version, values=new_policy.to_dict(), note=note.strip()[:300], created_at=now,
                        created_by_id=actor.user_id)
    db.session.add(row)
    db.session.flush()
    record("policy.revised", actor=actor, now=now, object_type="policy_version", object_id=version,
           details={**changes, **audit_details(merge)})
    return Saved(row, merge, saved_by, tuple(sorted(changes)))


def _flat(policy):
    """A policy as the form edits it: every threshold by name and every finding's severity by code."""
    return {name: getattr(policy, name) for name in THRESHOLDS} | \
        {code: severity_for(code, policy).value for code in SEVERITY_RULES}


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

"""The one Gate: the findings at a gate, the physician overrides that cover them, and what stays open.

Every gated step (the checklist, the start of the dose, the discharge) works out its findings,
then asks `decide` what stays open, and a physician's override goes through `override` here. An
override covers a finding by its code; for bound codes (readings, an arrangement, the dose) only
while the finding's values are those the physician saw: a BP overridden at 150/95 is open again
at 172/99, an override of 0.8 mg/kg does not cover 0.95 mg/kg. A new override of the same code
supersedes the old one (audited).
"""
from dataclasses import dataclass

from sqlalchemy import select

from opsmgr.audit.service import record
from opsmgr.auth.service import actor_for, reauthenticate
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.gates.models import FindingOverride
from opsmgr.rules.findings import Finding, Override, Problem, Severity, open_findings, override_problem
from opsmgr.twofactor import service as two_factor

#: Findings about a reading (or an arrangement): an override covers the values the physician saw, not a
#: new reading (a BP overridden at 150/95 is open again at 172/99, and needs the physician again; so is
#: a ride home accepted as "medical transport" and then changed to "a taxi").
READING_BOUND_CODES = frozenset({"BP_SOFT_GATE", "BP_HARD_GATE", "HEART_RATE_OUT_OF_RANGE", "SPO2_LOW",
                                 "ESCORT_ALTERNATIVE_ARRANGEMENT"})
NOT_OPEN = ("That finding is not open any more: it is no longer raised, or it is already overridden. "
            "Review the current findings.")


class OverrideRefused(DomainError):
    """An override that was not recorded (a wrong password's refusal is audited)."""


@dataclass(frozen=True)
class Gate:
    #: "start" (the checklist and the dose) or "discharge".
    name: str
    findings: tuple
    open: tuple
    #: The FindingOverride rows that cover a finding now.
    overrides: tuple
    policy_version: int

    @property
    def may_proceed(self):
        return not self.open


def finding_to_dict(finding):
    return {"code": finding.code, "severity": finding.severity.value, "message": finding.message,
            "values": finding.values}


def finding_from_dict(data):
    return Finding(data["code"], Severity(data["severity"]), data["message"], data.get("values", {}))


def overrides_for(visit, gate):
    return db.session.scalars(select(FindingOverride).where(FindingOverride.session_id == visit.id,
                                                            FindingOverride.gate == gate)
                              .order_by(FindingOverride.id)).all()


def covering_overrides(visit, gate, findings, bound_codes=frozenset(), rows=None):
    """The override rows that cover a finding as it stands now: by code, and for reading-bound
    codes (and ``bound_codes``) only while the finding's values are those the physician saw."""
    bound = READING_BOUND_CODES | set(bound_codes)
    by_code = {f.code: f for f in findings}
    rows = overrides_for(visit, gate) if rows is None else rows
    return tuple(row for row in rows if row.code in by_code and (
        row.code not in bound or row.finding.get("values") == finding_to_dict(by_code[row.code])["values"]))


def as_overrides(rows):
    return tuple(Override(code=row.code, by_role="physician", reason=row.reason) for row in rows)


def decide(visit, gate, findings, version, bound_codes=frozenset()):
    """The Gate: these findings, the overrides that cover them, and the ones still open."""
    rows = covering_overrides(visit, gate, findings, bound_codes)
    return Gate(gate, tuple(findings), open_findings(findings, as_overrides(rows)), rows, version)


def override(visit, decided, *, code, physician, password, reason, now, ip=None, totp_code=None):
    """A physician overrides one open finding of a decided Gate (never an absolute one), with their
    password re-entered and a reason; a wrong password is audited and counts toward the lockout."""
    finding = next((f for f in decided.open if f.code == code), None)
    if finding is None:
        raise OverrideRefused([Problem(None, NOT_OPEN)])
    if finding.severity == Severity.ABSOLUTE:
        raise OverrideRefused([Problem(None, f"{finding.message} This finding cannot be overridden by anyone.")])
    return record_override(visit, gate=decided.name, finding=finding, physician=physician, password=password,
                           reason=reason, now=now, ip=ip, totp_code=totp_code)


def record_override(visit, *, gate, finding, physician, password, reason, now, ip=None, totp_code=None):
    """Record one override (superseding an earlier one of the same code, audited); refused without the
    physician's password or a reason."""
    actor = actor_for(physician, ip)
    if not reauthenticate(physician, password, ip=ip, now=now, purpose=f"override:{gate}"):
        record("override.refused", actor=actor, now=now, outcome="denied", object_type="infusion_session",
               object_id=visit.id, patient_id=visit.patient_id,
               details={"code": finding.code, "gate": gate, "reason": "password"})
        raise OverrideRefused([Problem("password", "The password is not correct; the override was not recorded.")],
                              audited=True)
    if not two_factor.check_signing_code(physician, totp_code, ip=ip, now=now, purpose=f"override:{gate}"):
        record("override.refused", actor=actor, now=now, outcome="denied", object_type="infusion_session",
               object_id=visit.id, patient_id=visit.patient_id,
               details={"code": finding.code, "gate": gate, "reason": "second_factor"})
        raise OverrideRefused([Problem("totp_code", two_factor.SIGNING_REFUSED)], audited=True)
    problem = override_problem(finding, role=physician.role, reason=reason)
    if problem:
        raise OverrideRefused([Problem("reason", problem)])
    existing = db.session.scalar(select(FindingOverride).where(
        FindingOverride.session_id == visit.id, FindingOverride.gate == gate, FindingOverride.code == finding.code))
    if existing is not None:
        was = [f"{name}={value}" for name, value in (existing.finding.get("values") or {}).items()]
        db.session.delete(existing)
        db.session.flush()
        record("override.superseded", actor=actor, now=now, object_type="infusion_session", object_id=visit.id,
               patient_id=visit.patient_id, details={"code": existing.code, "gate": gate, "was": was})
    row = FindingOverride(session_id=visit.id, gate=gate, code=finding.code, finding=finding_to_dict(finding),
                          reason=reason.strip()[:500], physician_id=physician.id, created_at=now)
    db.session.add(row)
    db.session.flush()
    record("override.recorded", actor=actor, now=now, object_type="infusion_session", object_id=visit.id,
           patient_id=visit.patient_id, details={"code": finding.code, "gate": gate,
                                                 "severity": finding.severity.value})
    return row

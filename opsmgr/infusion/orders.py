"""The dose to give: the series dose, or a physician's order for this one session.

A physician's change of one session's dose is an order (`DoseOrder`): who, when, why and the
policy version, kept with the session and part of its signed record. The latest order is the dose
the nurse sees and the only dose the start records. Overrides of dose findings cover the dose they
were granted for (the finding's values), so a new order opens them again.
"""
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from opsmgr.audit.service import record
from opsmgr.auth.service import actor_for, reauthenticate
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.infusion.models import DoseOrder, DoseRecord
from opsmgr.policy.service import current_policy
from opsmgr.rules import dosing
from opsmgr.rules.findings import Problem
from opsmgr.rules.session_states import SessionState

MG_PER_KG_STEP = Decimal("0.001")
#: Orders are given before the dose starts.
ORDERABLE_STATES = (SessionState.SCHEDULED, SessionState.CHECKED_IN, SessionState.CHECKLIST, SessionState.CLEARED)


class DoseChanged(DomainError):
    """The dose on the page is no longer the dose in force (a physician ordered another meanwhile)."""


@dataclass(frozen=True)
class DosePlan:
    """The dose with its inputs: mg/kg × today's weight = mg (IV), or whole devices (esketamine)."""

    route: str
    mg_per_kg: Decimal | None
    weight_kg: Decimal | None
    dose_mg: Decimal | None
    infusion_minutes: int | None
    #: The physician's order in force (None: the series dose).
    order: DoseOrder | None = None

    @property
    def is_changed(self):
        return self.order is not None

    @property
    def order_id(self):
        """What the page carries to say which dose it showed: the order's id, 0 for the series dose."""
        return self.order.id if self.order is not None else 0


def per_kg(value):
    """mg/kg as stored (three decimals), so 0.8 typed and 0.800 shown are the same dose in a finding."""
    return None if value is None else dosing.as_decimal(value).quantize(MG_PER_KG_STEP)


def current_order(infusion_session):
    """The physician's dose order in force for this session (the latest), or None."""
    return db.session.scalar(select(DoseOrder).where(DoseOrder.session_id == infusion_session.id)
                             .order_by(DoseOrder.id.desc()).limit(1))


def plan_dose(infusion_session, response, *, infusion_minutes=None, order=None):
    """The dose in force: the order's if there is one, else the series dose; mg from today's weight."""
    series, route = infusion_session.series, infusion_session.series.protocol.route
    weight = response.weight_kg if response is not None and (response.weight_kg or 0) > 0 else None
    if route == "esketamine":
        dose_mg = order.dose_mg if order is not None else series.dose_mg
        return DosePlan(route, None, weight, None if dose_mg is None else Decimal(dose_mg), None, order)
    chosen = per_kg(order.mg_per_kg if order is not None else series.dose_mg_per_kg)
    dose_mg = None if chosen is None or weight is None else dosing.iv_dose_mg(chosen, weight)
    return DosePlan(route, chosen, weight, dose_mg, infusion_minutes, order)


def dose_in_force(infusion_session, order=None):
    """mg/kg (IV) or mg (esketamine) the session gets now, before any weight."""
    order = order if order is not None else current_order(infusion_session)
    series = infusion_session.series
    if series.protocol.route == "esketamine":
        return order.dose_mg if order is not None else series.dose_mg
    return per_kg(order.mg_per_kg if order is not None else series.dose_mg_per_kg)


def check_shown(infusion_session, shown_order_id):
    """Refuse when the page showed another dose than the one in force (`shown_order_id` None: no page)."""
    order = current_order(infusion_session)
    if shown_order_id is None or (order.id if order is not None else 0) == shown_order_id:
        return order
    raise DoseChanged([Problem(None, f"A physician changed this session's dose after this page was opened: it is "
                                     f"now {describe(infusion_session, order)}. Check the dose, then try again.")])


def describe(infusion_session, order):
    """The dose in force in words: "0.8 mg/kg (ordered)" or "0.5 mg/kg (the series dose)"."""
    value = dose_in_force(infusion_session, order)
    unit = "mg" if infusion_session.series.protocol.route == "esketamine" else "mg/kg"
    text = "not set" if value is None else f"{format(Decimal(value).normalize(), 'f')} {unit}"
    return f"{text} (the series dose)" if order is None else f"{text} (ordered)"


def order_dose(infusion_session, *, dose, reason, physician, password, now, ip=None):
    """A physician orders this session's dose (mg/kg for IV, mg for esketamine), password re-entered."""
    actor = actor_for(physician, ip)
    if infusion_session.state not in ORDERABLE_STATES or db.session.scalar(
            select(DoseRecord.id).where(DoseRecord.session_id == infusion_session.id)) is not None:
        raise DomainError([Problem(None, f"The dose is ordered before it starts; this session is "
                                         f"{infusion_session.state.label.lower()}.")])
    route = infusion_session.series.protocol.route
    new = per_kg(dose) if route == "iv" and dose is not None else dose
    problem = dosing.dose_order_problem(dose_in_force(infusion_session), new, reason, physician.role)
    if problem:
        raise DomainError([problem])
    version, policy = current_policy()
    if route == "esketamine":
        # A dose nobody may give (not whole devices) is refused at the order, not later at the chair.
        for finding in dosing.dose_findings(route=route, mg_per_kg=None, infusion_minutes=None, dose_mg=new,
                                            policy=policy):
            raise DomainError([Problem("dose", finding.message)])
    if not reauthenticate(physician, password, ip=ip, now=now, purpose="dose.order"):
        raise DomainError([Problem("password", "The password is not correct; the dose was not changed.")],
                          audited=True)
    was = describe(infusion_session, current_order(infusion_session))
    order = DoseOrder(session_id=infusion_session.id, mg_per_kg=new if route == "iv" else None,
                      dose_mg=new if route == "esketamine" else None, reason=reason.strip()[:300],
                      ordered_by_id=physician.id, ordered_at=now, policy_version=version)
    db.session.add(order)
    db.session.flush()
    record("dose.ordered", actor=actor, now=now, object_type="infusion_session", object_id=infusion_session.id,
           patient_id=infusion_session.patient_id,
           details={"order_id": order.id, "was": was, "now": describe(infusion_session, order),
                    "policy_version": version})
    return order

"""In-chair monitoring: the protocol's vitals timepoints, the next reading due, alerts, and pauses.

Sources: clinical reference rule 11 and §1.8 (Emory and Yale: every 10 minutes during an IV
infusion, every 15 in recovery), §2.2 (esketamine BP before the dose and about 40 minutes after,
observation >= 2 hours), rule 12 (alert limits [INF]; MOAA/S 0 is loss of consciousness).
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from opsmgr.rules import wording
from opsmgr.rules.findings import Finding, Severity

ROUTES = ("iv", "esketamine")
#: What a nurse or physician may do when acknowledging an alert (§1.9: hold, stop or rate change).
ACK_ACTIONS = ("continue", "slow", "pause", "stop")
#: Alerts are acknowledged by a licensed user at the chair (rule 12): a nurse or a physician.
ACK_ROLES = ("nurse", "physician")
#: Events of a running infusion: an alert's "pause" or "stop", and the resume after a pause.
EVENT_KINDS = ("pause", "resume", "stop")
MOAAS_RANGE = range(0, 6)
#: What each alert is about, as its heading at the chair (the code itself is for support only).
ALERT_TITLES = {"ALERT_BLOOD_PRESSURE": "Blood pressure alert", "ALERT_SPO2": "Oxygen saturation alert",
                "ALERT_SEDATION": "Sedation alert", "LOSS_OF_CONSCIOUSNESS": "Loss of consciousness"}


@dataclass(frozen=True)
class Reading:
    taken_at: datetime
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    spo2: int | None
    #: Modified Observer's Assessment of Alertness/Sedation: 5 awake, 0 no response.
    moaas: int | None = None

    def __post_init__(self):
        if self.moaas is not None and self.moaas not in MOAAS_RANGE:
            raise ValueError("MOAA/S runs from 0 to 5")


@dataclass(frozen=True)
class Timepoint:
    at: datetime
    label: str
    #: A reading this far either side of `at` counts for it.
    window: timedelta = timedelta(0)


@dataclass(frozen=True)
class VitalsDue:
    due_at: datetime
    #: True once the reading is late: after due_at (IV) or after the 40-minute window closes.
    overdue: bool
    label: str


def vitals_timepoints(*, route, dose_started_at, infusion_ended_at, policy) -> tuple[Timepoint, ...]:
    """The protocol's planned readings, in time order.

    IV: from the start every 10 minutes while infusing, at the end, then every 15 minutes and
    once more before discharge (the end of the minimum observation); `infusion_ended_at` is
    the actual end, or the planned end while the infusion runs. Esketamine: before the dose,
    at 40 minutes (± 5), and before discharge.
    """
    if route == "esketamine":
        return _esketamine_timepoints(dose_started_at, policy)
    _check_route(route)
    if infusion_ended_at is None or infusion_ended_at < dose_started_at:
        raise ValueError("an IV timeline needs the infusion's end (actual or planned) after its start")
    every = timedelta(minutes=policy.iv_infusion_vitals_every_minutes)
    points, at = [Timepoint(dose_started_at, "Start of infusion")], dose_started_at + every
    # A timepoint less than a minute before the end is the end's reading (an infusion ended at
    # 40:20 has one reading at its end, not "40 min" and "end" twenty seconds apart).
    while at + timedelta(minutes=1) <= infusion_ended_at:
        points.append(Timepoint(at, f"Infusion {_minutes(at - dose_started_at)} min"))
        at += every
    points.append(Timepoint(infusion_ended_at, "End of infusion"))
    recovery = timedelta(minutes=policy.iv_recovery_vitals_every_minutes)
    observation = timedelta(minutes=policy.iv_min_observation_minutes)
    after = recovery
    while after < observation:
        points.append(Timepoint(infusion_ended_at + after, f"Recovery {_minutes(after)} min"))
        after += recovery
    label = f"Before discharge (recovery {_minutes(observation)} min)"
    points.append(Timepoint(infusion_ended_at + observation, label))
    return tuple(points)


def _esketamine_timepoints(dose_started_at, policy):
    check = timedelta(minutes=policy.esketamine_bp_check_minutes)
    return (Timepoint(dose_started_at, "Before the dose"),
            Timepoint(dose_started_at + check, f"BP at {_minutes(check)} min",
                      timedelta(minutes=policy.esketamine_bp_window_minutes)),
            Timepoint(dose_started_at + timedelta(minutes=policy.esketamine_min_observation_minutes),
                      "Before discharge"))


def next_vitals_due(*, route, dose_started_at, infusion_ended_at, readings, now, policy) -> VitalsDue:
    """When the next reading is due after the dose started, and whether it is overdue.

    IV: the last reading (or the start) + 10 minutes while infusing, + 15 minutes once the
    infusion has ended; a reading exactly at due_at is on time. A pause changes nothing here: a
    paused infusion has not ended, so readings stay due every 10 minutes through the pause and
    after the resume (the pause followed an alert; monitoring never slows down then). Esketamine: the 40-minute BP is
    due within 35–45 minutes and overdue after 45 with no reading in that window (a later reading
    does not make up for it); once taken, the next reading is the one before discharge.
    """
    if route == "esketamine":
        return _esketamine_due(dose_started_at, readings, now, policy)
    _check_route(route)
    last = max([dose_started_at, *(r.taken_at for r in readings)])
    if infusion_ended_at is None or now < infusion_ended_at:
        every, label = policy.iv_infusion_vitals_every_minutes, "Infusion reading"
    else:
        every, label = policy.iv_recovery_vitals_every_minutes, "Recovery reading"
    due_at = last + timedelta(minutes=every)
    return VitalsDue(due_at, now > due_at, f"{label} (every {every} min)")


def _esketamine_due(dose_started_at, readings, now, policy):
    check = dose_started_at + timedelta(minutes=policy.esketamine_bp_check_minutes)
    window = timedelta(minutes=policy.esketamine_bp_window_minutes)
    if not any(check - window <= r.taken_at <= check + window for r in readings):
        opens, closes = (_minutes(check - window - dose_started_at), _minutes(check + window - dose_started_at))
        return VitalsDue(check, now > check + window,
                         f"BP at {policy.esketamine_bp_check_minutes} min ({opens}–{closes} min after the dose)")
    discharge_at = dose_started_at + timedelta(minutes=policy.esketamine_min_observation_minutes)
    return VitalsDue(discharge_at, False, "Before discharge")


@dataclass(frozen=True)
class Pause:
    started_at: datetime
    #: The resume, the stop or the end of the infusion; None while still paused.
    ended_at: datetime | None


def pauses_of(events, *, infusion_ended_at=None) -> tuple[Pause, ...]:
    """The pauses in (kind, at) events given in time order: each runs until the next resume or stop,
    or until the infusion ended. A pause while paused and a resume while running change nothing."""
    found, since = [], None
    for kind, at in events:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown infusion event {kind!r}")
        if kind == "pause" and since is None:
            since = at
        elif kind in ("resume", "stop") and since is not None:
            found.append(Pause(since, at))
            since = None
    if since is not None:
        found.append(Pause(since, infusion_ended_at))
    return tuple(found)


def is_paused(pauses) -> bool:
    return bool(pauses) and pauses[-1].ended_at is None


def paused_time(pauses, *, until) -> timedelta:
    """How long the infusion was paused up to `until`; a pause still open counts until then."""
    total = timedelta(0)
    for pause in pauses:
        end = min(pause.ended_at or until, until)
        if end > pause.started_at:
            total += end - pause.started_at
    return total


def planned_infusion_end(*, dose_started_at, infusion_minutes, pauses, now) -> datetime:
    """When a running IV infusion should end: its minutes after the start, later by the time paused.

    While paused the planned end moves on with the clock: the drug still to give is given after
    the resume, over the minutes that were left.
    """
    return dose_started_at + timedelta(minutes=infusion_minutes or 0) + paused_time(pauses, until=now)


def reading_alerts(reading: Reading, *, policy) -> tuple[Finding, ...]:
    """Alerts a reading raises (rule 12); missing values raise none.

    Alerts are NEEDS_PHYSICIAN so they stay open until acknowledged, but unlike an override the
    acknowledgement may come from a nurse or a physician (see `acknowledgement_problem`).
    """
    alerts = []
    if _at_or_above(reading.systolic, policy.alert_systolic) or _at_or_above(reading.diastolic,
                                                                             policy.alert_diastolic):
        alerts.append(Finding("ALERT_BLOOD_PRESSURE", Severity.NEEDS_PHYSICIAN,
                              wording.blood_pressure(reading.systolic, reading.diastolic, policy.alert_systolic,
                                                     policy.alert_diastolic, inclusive=True) + ".",
                              {"systolic": reading.systolic, "diastolic": reading.diastolic,
                               "alert_systolic": policy.alert_systolic, "alert_diastolic": policy.alert_diastolic}))
    if reading.spo2 is not None and reading.spo2 < policy.alert_spo2_below:
        alerts.append(Finding("ALERT_SPO2", Severity.NEEDS_PHYSICIAN,
                              wording.spo2_below(reading.spo2, policy.alert_spo2_below) + ".",
                              {"spo2": reading.spo2, "alert_spo2_below": policy.alert_spo2_below}))
    if reading.moaas is not None and reading.moaas <= policy.alert_moaas_at_or_below:
        alerts.append(Finding("ALERT_SEDATION", Severity.NEEDS_PHYSICIAN,
                              f"MOAA/S {reading.moaas}: sedated (alert at {policy.alert_moaas_at_or_below} or below).",
                              {"moaas": reading.moaas, "alert_moaas_at_or_below": policy.alert_moaas_at_or_below}))
    if reading.moaas == 0:
        alerts.append(Finding("LOSS_OF_CONSCIOUSNESS", Severity.NEEDS_PHYSICIAN,
                              "MOAA/S 0: loss of consciousness.", {"moaas": 0}))
    return tuple(alerts)


def acknowledgement_problem(action, note, role) -> str | None:
    """Why an alert acknowledgement is refused, or None: a nurse or physician, an action and a note."""
    if role not in ACK_ROLES:
        return "Only a nurse or a physician can acknowledge an alert."
    if action not in ACK_ACTIONS:
        return f"Choose what was done: {', '.join(ACK_ACTIONS)}."
    if not (note or "").strip():
        return "Write a note on what was done."
    return None


def _at_or_above(value, limit):
    return value is not None and value >= limit


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def _check_route(route):
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}")

"""Monitoring rules, table-first: the protocol's timepoints, when a reading is due and overdue (edges
to the second), alert limits just inside, on and just outside, and acknowledgements. No app needed."""
from datetime import UTC, datetime, timedelta

import pytest

from opsmgr.rules.findings import Severity
from opsmgr.rules.monitoring import (
    ACK_ACTIONS,
    Pause,
    Reading,
    Timepoint,
    VitalsDue,
    acknowledgement_problem,
    is_paused,
    next_vitals_due,
    paused_time,
    pauses_of,
    planned_infusion_end,
    reading_alerts,
    vitals_timepoints,
)
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy

START = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def minutes(m, s=0):
    return timedelta(minutes=m, seconds=s)


def reading(at, systolic=128, diastolic=78, heart_rate=72, spo2=98, moaas=None):
    return Reading(at, systolic, diastolic, heart_rate, spo2, moaas)


# --- timepoints ---------------------------------------------------------------------------------

def test_iv_timepoints_every_ten_minutes_infusing_then_every_fifteen_in_recovery():
    points = vitals_timepoints(route="iv", dose_started_at=START, infusion_ended_at=START + minutes(40),
                               policy=DEFAULT_POLICY)
    assert [(p.at - START) // minutes(1) for p in points] == [0, 10, 20, 30, 40, 55, 70]
    assert [p.label for p in points] == ["Start of infusion", "Infusion 10 min", "Infusion 20 min",
                                         "Infusion 30 min", "End of infusion", "Recovery 15 min",
                                         "Before discharge (recovery 30 min)"]


def test_iv_timepoints_for_an_infusion_that_is_not_a_multiple_of_ten():
    points = vitals_timepoints(route="iv", dose_started_at=START, infusion_ended_at=START + minutes(45),
                               policy=DEFAULT_POLICY)
    assert [(p.at - START) // minutes(1) for p in points] == [0, 10, 20, 30, 40, 45, 60, 75]


@pytest.mark.parametrize("ended,offsets", [
    (minutes(40), [0, 10, 20, 30, 40]),                 # on a timepoint: one reading, the end
    (minutes(40, 59), [0, 10, 20, 30, 40]),             # within a minute of the 40-min point: merged
    (minutes(41), [0, 10, 20, 30, 40, 41]),             # a minute after it: both
    (minutes(39, 59), [0, 10, 20, 30, 39]),             # just before: the end only
])
def test_an_end_within_a_minute_of_a_timepoint_is_one_reading(ended, offsets):
    points = vitals_timepoints(route="iv", dose_started_at=START, infusion_ended_at=START + ended,
                               policy=DEFAULT_POLICY)
    infusing = [p for p in points if not p.label.startswith(("Recovery", "Before"))]
    assert [(p.at - START) // minutes(1) for p in infusing] == offsets
    assert infusing[-1].label == "End of infusion"


def test_iv_timepoints_follow_the_policy():
    policy = ClinicalPolicy(iv_infusion_vitals_every_minutes=5, iv_recovery_vitals_every_minutes=10,
                            iv_min_observation_minutes=25)
    points = vitals_timepoints(route="iv", dose_started_at=START, infusion_ended_at=START + minutes(20),
                               policy=policy)
    assert [(p.at - START) // minutes(1) for p in points] == [0, 5, 10, 15, 20, 30, 40, 45]


def test_iv_timepoints_need_the_end():
    with pytest.raises(ValueError):
        vitals_timepoints(route="iv", dose_started_at=START, infusion_ended_at=None, policy=DEFAULT_POLICY)


def test_esketamine_timepoints_before_the_dose_at_forty_minutes_and_before_discharge():
    points = vitals_timepoints(route="esketamine", dose_started_at=START, infusion_ended_at=None,
                               policy=DEFAULT_POLICY)
    assert points == (Timepoint(START, "Before the dose"),
                      Timepoint(START + minutes(40), "BP at 40 min", minutes(5)),
                      Timepoint(START + minutes(120), "Before discharge"))


# --- next reading due: IV -----------------------------------------------------------------------

def iv_due(now, readings=(), ended_at=None, policy=DEFAULT_POLICY):
    return next_vitals_due(route="iv", dose_started_at=START, infusion_ended_at=ended_at,
                           readings=readings, now=now, policy=policy)


@pytest.mark.parametrize("since_last,overdue", [
    (minutes(9, 59), False),
    (minutes(10), False),        # exactly at due_at: on time
    (minutes(10, 1), True),
])
def test_infusing_a_reading_is_due_ten_minutes_after_the_last(since_last, overdue):
    last = START + minutes(20)
    due = iv_due(last + since_last, [reading(START), reading(last)])
    assert due == VitalsDue(last + minutes(10), overdue, "Infusion reading (every 10 min)")


@pytest.mark.parametrize("since_start,overdue", [(minutes(10) - SECOND, False), (minutes(10), False),
                                                 (minutes(10) + SECOND, True)])
def test_infusing_with_no_reading_yet_counts_from_the_start(since_start, overdue):
    due = iv_due(START + since_start)
    assert (due.due_at, due.overdue) == (START + minutes(10), overdue)


def test_a_pre_start_reading_does_not_move_the_first_infusion_reading_earlier():
    due = iv_due(START + minutes(5), [reading(START - minutes(8))])
    assert due.due_at == START + minutes(10)


@pytest.mark.parametrize("since_last,overdue", [
    (minutes(14, 59), False),
    (minutes(15), False),
    (minutes(15, 1), True),
])
def test_in_recovery_a_reading_is_due_fifteen_minutes_after_the_last(since_last, overdue):
    ended_at = START + minutes(40)
    last = ended_at + minutes(5)
    due = iv_due(last + since_last, [reading(START + minutes(30)), reading(last)], ended_at=ended_at)
    assert due == VitalsDue(last + minutes(15), overdue, "Recovery reading (every 15 min)")


def test_recovery_cadence_starts_exactly_at_the_end_of_the_infusion():
    ended_at = START + minutes(40)
    readings = [reading(START + minutes(35))]
    assert iv_due(ended_at - SECOND, readings, ended_at=ended_at).due_at == START + minutes(45)
    assert iv_due(ended_at, readings, ended_at=ended_at).due_at == START + minutes(50)


def test_iv_cadence_comes_from_the_policy():
    policy = ClinicalPolicy(iv_infusion_vitals_every_minutes=5, iv_recovery_vitals_every_minutes=30)
    assert iv_due(START + minutes(6), policy=policy).overdue is True
    ended_at = START + minutes(40)
    due = iv_due(ended_at + minutes(20), [reading(ended_at)], ended_at=ended_at, policy=policy)
    assert (due.due_at, due.overdue) == (ended_at + minutes(30), False)


# --- pauses ------------------------------------------------------------------------------------

def at(m):
    return START + minutes(m)


@pytest.mark.parametrize("events,ended_at,expected", [
    ([], None, ()),
    ([("pause", at(13))], None, (Pause(at(13), None),)),
    ([("pause", at(13)), ("resume", at(20))], None, (Pause(at(13), at(20)),)),
    ([("pause", at(13)), ("stop", at(15))], at(15), (Pause(at(13), at(15)),)),
    ([("pause", at(13))], at(18), (Pause(at(13), at(18)),)),            # ended while paused
    ([("pause", at(13)), ("pause", at(16)), ("resume", at(20))], None,  # a second pause keeps the first
     (Pause(at(13), at(20)),)),
    ([("resume", at(5)), ("pause", at(13)), ("resume", at(20)), ("pause", at(30))], None,
     (Pause(at(13), at(20)), Pause(at(30), None))),
])
def test_pauses_run_from_a_pause_to_the_next_resume_or_stop(events, ended_at, expected):
    found = pauses_of(events, infusion_ended_at=ended_at)
    assert found == expected
    assert is_paused(found) is (bool(expected) and expected[-1].ended_at is None)


def test_an_unknown_infusion_event_is_a_programming_error():
    with pytest.raises(ValueError):
        pauses_of([("hold", at(1))])


@pytest.mark.parametrize("until,expected", [
    (at(13) - SECOND, minutes(0)),        # just before the pause
    (at(13), minutes(0)),                 # on its start
    (at(13) + SECOND, minutes(0, 1)),     # just after
    (at(20), minutes(7)),                 # on the resume
    (at(29), minutes(7)),
    (at(31), minutes(8)),                 # into the second, open pause
])
def test_paused_time_counts_an_open_pause_until_now(until, expected):
    found = (Pause(at(13), at(20)), Pause(at(30), None))
    assert paused_time(found, until=until) == expected


@pytest.mark.parametrize("pauses,now,end_minutes", [
    ((), at(5), 40),
    ((Pause(at(13), at(20)),), at(25), 47),           # seven minutes paused: seven later
    ((Pause(at(13), None),), at(13), 40),             # paused this instant
    ((Pause(at(13), None),), at(18), 45),             # still paused: the end moves with the clock
    ((Pause(at(13), at(20)), Pause(at(30), at(31))), at(35), 48),
])
def test_the_planned_end_of_a_running_infusion_moves_back_by_the_time_paused(pauses, now, end_minutes):
    assert planned_infusion_end(dose_started_at=START, infusion_minutes=40, pauses=pauses, now=now) == at(end_minutes)


def test_a_pause_does_not_slow_the_vitals_cadence():
    """A paused infusion has not ended: the next reading stays 10 minutes after the last, as when running."""
    due = iv_due(at(22), [reading(at(12))])
    assert due == VitalsDue(at(22), False, "Infusion reading (every 10 min)")
    points = vitals_timepoints(route="iv", dose_started_at=START, policy=DEFAULT_POLICY,
                               infusion_ended_at=planned_infusion_end(
                                   dose_started_at=START, infusion_minutes=40,
                                   pauses=(Pause(at(13), at(20)),), now=at(25)))
    assert [(p.at - START) // minutes(1) for p in points] == [0, 10, 20, 30, 40, 47, 62, 77]


# --- next reading due: esketamine ---------------------------------------------------------------

def esk_due(now, readings=(), policy=DEFAULT_POLICY):
    return next_vitals_due(route="esketamine", dose_started_at=START, infusion_ended_at=None,
                           readings=readings, now=now, policy=policy)


@pytest.mark.parametrize("taken_after,counts", [
    (minutes(34), False),
    (minutes(35) - SECOND, False),
    (minutes(35), True),         # window opens
    (minutes(40), True),
    (minutes(45), True),         # window closes
    (minutes(45) + SECOND, False),
    (minutes(46), False),
])
def test_esketamine_forty_minute_bp_counts_only_inside_35_to_45(taken_after, counts):
    due = esk_due(START + minutes(50), [reading(START - minutes(5)), reading(START + taken_after)])
    if counts:
        assert due == VitalsDue(START + minutes(120), False, "Before discharge")
    else:
        assert due == VitalsDue(START + minutes(40), True, "BP at 40 min (35–45 min after the dose)")


@pytest.mark.parametrize("now_after,overdue", [
    (minutes(34), False),
    (minutes(35), False),
    (minutes(45), False),        # the window's last moment
    (minutes(45, 1), True),
    (minutes(46), True),
])
def test_esketamine_forty_minute_bp_is_overdue_only_after_the_window_closes(now_after, overdue):
    due = esk_due(START + now_after, [reading(START - minutes(5))])
    assert (due.due_at, due.overdue) == (START + minutes(40), overdue)


def test_esketamine_window_comes_from_the_policy():
    policy = ClinicalPolicy(esketamine_bp_check_minutes=30, esketamine_bp_window_minutes=10)
    assert esk_due(START + minutes(41), policy=policy).overdue is True
    assert esk_due(START + minutes(40), policy=policy).overdue is False
    assert esk_due(START + minutes(45), [reading(START + minutes(20))], policy=policy).label == "Before discharge"


def test_unknown_route_raises():
    with pytest.raises(ValueError):
        next_vitals_due(route="oral", dose_started_at=START, infusion_ended_at=None, readings=(), now=START,
                        policy=DEFAULT_POLICY)


# --- alerts -------------------------------------------------------------------------------------

def alert_codes(policy=DEFAULT_POLICY, **values):
    return tuple(f.code for f in reading_alerts(reading(START, **values), policy=policy))


@pytest.mark.parametrize("values,codes", [
    ({"systolic": 179}, ()),
    ({"systolic": 180}, ("ALERT_BLOOD_PRESSURE",)),
    ({"systolic": 181}, ("ALERT_BLOOD_PRESSURE",)),
    ({"diastolic": 109}, ()),
    ({"diastolic": 110}, ("ALERT_BLOOD_PRESSURE",)),
    ({"diastolic": 111}, ("ALERT_BLOOD_PRESSURE",)),
    ({"systolic": 185, "diastolic": 112}, ("ALERT_BLOOD_PRESSURE",)),   # one alert for both
    ({"spo2": 93}, ()),
    ({"spo2": 92}, ()),
    ({"spo2": 91}, ("ALERT_SPO2",)),
    ({"moaas": 5}, ()),
    ({"moaas": 3}, ()),
    ({"moaas": 2}, ("ALERT_SEDATION",)),
    ({"moaas": 1}, ("ALERT_SEDATION",)),
    ({"moaas": 0}, ("ALERT_SEDATION", "LOSS_OF_CONSCIOUSNESS")),
    ({"systolic": 190, "spo2": 88, "moaas": 0},
     ("ALERT_BLOOD_PRESSURE", "ALERT_SPO2", "ALERT_SEDATION", "LOSS_OF_CONSCIOUSNESS")),
    ({"systolic": None, "diastolic": None, "spo2": None, "moaas": None}, ()),   # nothing measured, no alert
])
def test_reading_alerts(values, codes):
    assert alert_codes(**values) == codes


def test_alerts_need_acknowledging_and_carry_their_values():
    (alert,) = reading_alerts(reading(START, systolic=185, diastolic=112), policy=DEFAULT_POLICY)
    assert alert.severity == Severity.NEEDS_PHYSICIAN
    assert alert.values["systolic"] == 185 and alert.values["diastolic"] == 112
    assert "185/112" in alert.message


@pytest.mark.parametrize("values,message", [
    # The same wording as the checklist's BP gate: the component at or above its limit is named.
    ({"systolic": 185, "diastolic": 95}, "Blood pressure 185/95: systolic 185 is at or above 180."),
    ({"systolic": 165, "diastolic": 110}, "Blood pressure 165/110: diastolic 110 is at or above 110."),
    ({"systolic": 185, "diastolic": 112},
     "Blood pressure 185/112: systolic 185 is at or above 180 and diastolic 112 is at or above 110."),
    ({"systolic": None, "diastolic": 115}, "Blood pressure –/115: diastolic 115 is at or above 110."),
    ({"spo2": 88}, "SpO2 88% is below 92%."),
])
def test_alert_messages_name_what_crossed_its_limit(values, message):
    (alert,) = reading_alerts(reading(START, **values), policy=DEFAULT_POLICY)
    assert alert.message == message


def test_alert_limits_come_from_the_policy():
    policy = ClinicalPolicy(alert_systolic=160, alert_diastolic=100, alert_spo2_below=95, alert_moaas_at_or_below=3)
    assert alert_codes(policy, systolic=160) == ("ALERT_BLOOD_PRESSURE",)
    assert alert_codes(policy, diastolic=100) == ("ALERT_BLOOD_PRESSURE",)
    assert alert_codes(policy, spo2=94) == ("ALERT_SPO2",)
    assert alert_codes(policy, moaas=3) == ("ALERT_SEDATION",)


@pytest.mark.parametrize("moaas", [-1, 6])
def test_moaas_outside_0_to_5_is_refused(moaas):
    with pytest.raises(ValueError):
        reading(START, moaas=moaas)


# --- acknowledgement ----------------------------------------------------------------------------

def test_the_acknowledgement_actions():
    assert ACK_ACTIONS == ("continue", "slow", "pause", "stop")


@pytest.mark.parametrize("action,note,role,ok", [
    ("continue", "Rechecked 170/100 after 5 min", "nurse", True),
    ("slow", "Rate halved", "physician", True),
    ("pause", "Paused at 25 min", "nurse", True),
    ("stop", "Stopped; labetalol given", "physician", True),
    ("stop", "Stopped", "coordinator", False),
    ("stop", "Stopped", "admin", False),
    ("ignore", "Fine", "nurse", False),
    ("", "Fine", "nurse", False),
    ("continue", "", "nurse", False),
    ("continue", "   ", "nurse", False),
    ("continue", None, "nurse", False),
])
def test_an_alert_is_acknowledged_by_a_nurse_or_physician_with_an_action_and_a_note(action, note, role, ok):
    problem = acknowledgement_problem(action, note, role)
    assert (problem is None) is ok, problem

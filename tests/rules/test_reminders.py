"""Patient reminder rules, table first: send times from the policy offsets, quiet hours on both edges,
daylight saving in America/New_York (2026: spring forward Sun 8 Mar, fall back Sun 1 Nov), never late,
fasting times, channel, default texts, SMS replies. No app needed."""
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opsmgr.rules.followups import ExistingItem, SessionFacts, reconcile
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy
from opsmgr.rules.reminders import (
    DEFAULT_EMAIL_BODY,
    DEFAULT_EMAIL_SUBJECT,
    DEFAULT_SMS,
    HELP_REPLY,
    PLACEHOLDERS,
    Reply,
    instruction_values,
    is_quiet,
    parse_reply,
    plan_reminders,
    quiet_hold,
    reminder_channel,
    visit_needs,
    when_to_send,
)

ZONE = "America/New_York"
NY = ZoneInfo(ZONE)
P = DEFAULT_POLICY
SECOND = timedelta(seconds=1)


def local(text):
    return datetime.fromisoformat(text).replace(tzinfo=NY).astimezone(UTC)


def booked(starts, status="scheduled", id_=42):
    starts_at = local(starts)
    return SessionFacts(id=id_, starts_at=starts_at, ends_at=starts_at + timedelta(hours=2), status=status)


def times(session, policy=P):
    return [(r.hours_before, r.due_at) for r in plan_reminders(session, policy, ZONE)]


# --- two-way SMS --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,reply", [
    ("YES", Reply.CONFIRM), ("yes", Reply.CONFIRM), (" Yes! ", Reply.CONFIRM), ("y", Reply.CONFIRM),
    ("Y.", Reply.CONFIRM), ("c", Reply.CONFIRM), ("Confirm", Reply.CONFIRM), ("ＹＥＳ", Reply.CONFIRM),
    ("STOP", Reply.STOP), ("stop.", Reply.STOP), ("Stop all", Reply.STOP), ("STOPALL", Reply.STOP),
    ("unsubscribe", Reply.STOP), ("Cancel", Reply.STOP), ("END", Reply.STOP), ("quit", Reply.STOP),
    ("opt-out", Reply.STOP), ("revoke", Reply.STOP),
    ("START", Reply.START), ("unstop", Reply.START),
    ("help", Reply.HELP), ("INFO?", Reply.HELP),
    ("yes please", None), ("yess", None), ("no", None), ("N", None), ("stop texting me about my appt", None),
    ("👍", None), ("", None), ("   ", None), (None, None),
])
def test_parse_reply(text, reply):
    assert parse_reply(text) == reply


# --- quiet hours --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("moment,quiet,held_to", [
    ("2026-12-07 19:59:59", False, "2026-12-07 19:59:59"),
    ("2026-12-07 20:00", True, "2026-12-08 08:00"),       # on the opening edge of the window
    ("2026-12-07 23:59", True, "2026-12-08 08:00"),
    ("2026-12-08 00:00", True, "2026-12-08 08:00"),
    ("2026-12-08 07:59:59", True, "2026-12-08 08:00"),
    ("2026-12-08 08:00", False, "2026-12-08 08:00"),      # on the closing edge: free to send
    ("2026-03-07 21:00", True, "2026-03-08 08:00"),       # spring-forward night: 08:00 EDT
    ("2026-10-31 21:00", True, "2026-11-01 08:00"),       # fall-back night: 08:00 EST
    ("2026-11-01 01:30", True, "2026-11-01 08:00"),       # inside the repeated hour
])
def test_quiet_hours_20_to_8_hold_a_message_to_8(moment, quiet, held_to):
    assert is_quiet(local(moment), P, ZONE) is quiet
    assert quiet_hold(local(moment), P, ZONE) == local(held_to)


def test_the_held_time_is_the_clock_time_on_both_daylight_saving_days():
    assert quiet_hold(local("2026-03-07 21:00"), P, ZONE) - local("2026-03-07 21:00") == timedelta(hours=10)
    assert quiet_hold(local("2026-10-31 21:00"), P, ZONE) - local("2026-10-31 21:00") == timedelta(hours=12)


@pytest.mark.parametrize("start,end,moment,quiet", [
    (1, 6, "00:59", False), (1, 6, "01:00", True), (1, 6, "05:59", True), (1, 6, "06:00", False),
    (22, 7, "21:59", False), (22, 7, "22:00", True), (22, 7, "06:59", True), (22, 7, "07:00", False),
    (8, 8, "03:00", False),                               # start == end: no quiet hours
])
def test_quiet_windows_within_a_day_or_across_midnight(start, end, moment, quiet):
    policy = ClinicalPolicy(quiet_hours_start=start, quiet_hours_end=end)
    assert is_quiet(local(f"2026-12-08 {moment}"), policy, ZONE) is quiet


# --- when reminders are sent --------------------------------------------------------------------------------------

@pytest.mark.parametrize("starts,expected", [
    ("2026-12-09 10:00", [(48, "2026-12-07 10:00"), (24, "2026-12-08 10:00")]),
    ("2026-12-09 08:00", [(48, "2026-12-07 08:00"), (24, "2026-12-08 08:00")]),
    ("2026-12-09 07:59", [(48, "2026-12-07 08:00"), (24, "2026-12-08 08:00")]),   # held by quiet hours
    ("2026-12-09 20:00", [(48, "2026-12-08 08:00"), (24, "2026-12-09 08:00")]),
    ("2026-12-09 19:59", [(48, "2026-12-07 19:59"), (24, "2026-12-08 19:59")]),
    # Daylight saving: the same clinic clock time two days and one day before.
    ("2026-03-09 10:00", [(48, "2026-03-07 10:00"), (24, "2026-03-08 10:00")]),
    ("2026-11-02 10:00", [(48, "2026-10-31 10:00"), (24, "2026-11-01 10:00")]),
])
def test_reminders_go_48_and_24_hours_before_at_the_clinic_clock_time(starts, expected):
    assert times(booked(starts)) == [(hours, local(at)) for hours, at in expected]


def test_across_daylight_saving_the_elapsed_hours_differ_by_one():
    spring = plan_reminders(booked("2026-03-09 10:00"), P, ZONE)
    autumn = plan_reminders(booked("2026-11-02 10:00"), P, ZONE)
    assert [local("2026-03-09 10:00") - r.due_at for r in spring] == [timedelta(hours=47), timedelta(hours=24)]
    assert [local("2026-11-02 10:00") - r.due_at for r in autumn] == [timedelta(hours=49), timedelta(hours=24)]


@pytest.mark.parametrize("first,second,starts,expected", [
    (48, 0, "2026-12-09 10:00", [(48, "2026-12-07 10:00")]),                       # 0 switches one off
    (0, 0, "2026-12-09 10:00", []),
    (24, 24, "2026-12-09 10:00", [(24, "2026-12-08 10:00")]),
    (3, 1, "2026-12-09 09:00", [(1, "2026-12-09 08:00")]),                        # 06:00 held to 08:00: one
    (14, 6, "2026-12-09 12:00", [(6, "2026-12-09 08:00")]),                      # both held to 08:00: one message
    (2, 1, "2026-12-09 08:00", []),                                               # held to the start: expired
    (2, 1, "2026-12-09 08:01", [(1, "2026-12-09 08:00")]),                        # just before the start: sent
])
def test_reminders_from_the_policy_offsets(first, second, starts, expected):
    policy = ClinicalPolicy(reminder_first_hours=first, reminder_second_hours=second)
    assert times(booked(starts), policy) == [(hours, local(at)) for hours, at in expected]


@pytest.mark.parametrize("status", ["checked_in", "cancelled", "no_show", "discharged"])
def test_only_a_scheduled_session_is_reminded(status):
    assert plan_reminders(booked("2026-12-09 10:00", status=status), P, ZONE) == ()


def test_the_key_holds_the_session_start_and_the_first_reminder_expires_when_the_second_is_due():
    first, second = plan_reminders(booked("2026-12-09 10:00"), P, ZONE)
    assert first.key == "reminder:session:42:48h:20261209T1500Z"
    assert (first.expires_at, first.add_until) == (second.due_at, first.due_at)
    assert (second.expires_at, second.add_until) == (local("2026-12-09 10:00"), None)


@pytest.mark.parametrize("due,now,sent_at", [
    ("2026-12-08 10:00", "2026-12-08 09:00", "2026-12-08 10:00"),   # not yet due: at its time
    ("2026-12-08 10:00", "2026-12-08 15:00", "2026-12-08 15:00"),   # after downtime: now
    ("2026-12-08 10:00", "2026-12-08 21:00", "2026-12-09 08:00"),   # late, in quiet hours: held
    ("2026-12-08 10:00", "2026-12-09 09:59:59", "2026-12-09 09:59:59"),   # a second before the start
    ("2026-12-08 10:00", "2026-12-09 10:00", None),                 # at the start: expired
    ("2026-12-08 10:00", "2026-12-09 11:00", None),
    ("2026-12-08 19:00", "2026-12-09 07:00", None),                 # held to 08:00 would be at/after 08:00 start
])
def test_when_to_send_never_late(due, now, sent_at):
    starts = "2026-12-09 10:00" if not due.endswith("19:00") else "2026-12-09 08:00"
    expected = local(sent_at) if sent_at else None
    assert when_to_send(local(due), local(starts), local(now), P, ZONE) == expected


@pytest.mark.parametrize("booked_at,added", [
    ("2026-12-06 09:00", [48, 24]),
    ("2026-12-07 10:00", [48, 24]),      # on the first reminder's time: still added
    ("2026-12-07 10:01", [24]),          # just after: the 24-hour one is still to come
    ("2026-12-08 10:01", [24]),          # after both times: the last one goes now
    ("2026-12-09 09:59", [24]),
    ("2026-12-09 10:00", []),            # at the start: expired, never late
])
def test_booking_late_adds_only_the_reminders_still_worth_sending(booked_at, added):
    wanted = plan_reminders(booked("2026-12-09 10:00"), P, ZONE)
    result = reconcile([], wanted, local(booked_at))
    assert [r.hours_before for r in result.to_add] == added


def test_after_downtime_past_the_second_time_the_first_reminder_expires_and_the_second_goes():
    wanted = plan_reminders(booked("2026-12-09 10:00"), P, ZONE)
    stored_items = [ExistingItem(r.key, "pending", r.expires_at) for r in wanted]
    result = reconcile(stored_items, wanted, local("2026-12-08 10:30"))
    assert [(c.item.key, c.reason) for c in result.to_cancel] == [(wanted[0].key, "expired")]
    assert [k.key for k in result.to_keep] == [wanted[1].key]


# --- what the visit needs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("route,starts,eat,drink,liquids", [
    ("iv", "2026-12-09 10:00", "04:00", "08:00", "clear liquids"),
    ("esketamine", "2026-12-09 10:00", "08:00", "09:30", "liquids"),
    ("iv", "2026-03-08 08:00", "01:00", "06:00", "clear liquids"),   # 6 real hours before 08:00 EDT is 01:00 EST
    ("iv", "2026-11-01 08:00", "02:00", "06:00", "clear liquids"),   # fall back: after the repeated hour
])
def test_fasting_times_from_the_session_time_and_route(route, starts, eat, drink, liquids):
    values = instruction_values(visit_needs(local(starts), route, P, ZONE))
    assert (values["eat_until"], values["drink_until"], values["liquids"]) == (eat, drink, liquids)


def test_a_fast_that_starts_the_day_before_names_the_day():
    policy = ClinicalPolicy(iv_fast_solids_minutes=720)
    needs = visit_needs(local("2026-12-08 08:00"), "iv", policy, ZONE)
    assert instruction_values(needs) == {"session_day": "Tue 8 Dec", "session_time": "08:00",
                                         "eat_until": "20:00 on Mon 7 Dec", "drink_until": "06:00",
                                         "liquids": "clear liquids"}
    assert needs.needs_escort and needs.no_driving_until_next_day


@pytest.mark.parametrize("preference,consent,phone,email,opted_out,channel,reason", [
    ("sms", date(2026, 1, 5), "+16175550100", "", False, "sms", None),
    ("email", date(2026, 1, 5), "", "a@example.org", False, "email", None),
    ("none", date(2026, 1, 5), "+16175550100", "", False, None, "does not want"),
    ("sms", None, "+16175550100", "", False, None, "No contact consent"),
    ("sms", date(2026, 1, 5), "+16175550100", "", True, None, "opted out"),
    ("email", date(2026, 1, 5), "+16175550100", "a@example.org", True, "email", None),   # STOP is for texts
    ("sms", date(2026, 1, 5), "", "a@example.org", False, None, "No phone number"),
    ("email", date(2026, 1, 5), "+16175550100", "", False, None, "No email address"),
])
def test_reminder_channel(preference, consent, phone, email, opted_out, channel, reason):
    choice = reminder_channel(preference, consent_on=consent, phone=phone, email=email, sms_opted_out=opted_out)
    assert choice.channel == channel
    assert (reason is None and choice.reason is None) or reason in choice.reason


# --- default texts: minimum necessary -----------------------------------------------------------------------------

TEXTS = [DEFAULT_SMS, DEFAULT_EMAIL_SUBJECT, DEFAULT_EMAIL_BODY, HELP_REPLY]


@pytest.mark.parametrize("text", TEXTS)
def test_default_texts_name_no_drug_diagnosis_or_record_number(text):
    banned = r"ketamine|esketamine|spravato|infusion|depress|ptsd|trd|mdd|mrn|record|diagnos|phq|treatment"
    assert not re.search(banned, text, re.I)
    assert set(re.findall(r"{{\s*(\w+)\s*}}", text)) <= set(PLACEHOLDERS)


def test_the_sms_says_how_to_confirm_and_opt_out_and_to_call_to_cancel():
    assert parse_reply("YES") == Reply.CONFIRM and "Reply YES to confirm" in DEFAULT_SMS
    assert "Reply STOP" in DEFAULT_SMS and "To change or cancel, call" in DEFAULT_SMS


def test_a_moved_session_gets_new_keys():
    session = booked("2026-12-09 10:00")
    moved = replace(session, starts_at=local("2026-12-09 11:00"))
    assert not {r.key for r in plan_reminders(session, P, ZONE)} & {r.key for r in plan_reminders(moved, P, ZONE)}

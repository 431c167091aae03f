"""Patient reminders: when each is sent (policy offsets, held by quiet hours, never late), what the
visit needs (fasting times, escort, no driving), which channel, the default texts, and the meaning
of an SMS reply.

Sources: issue 12 (48 h and 24 h before, quiet hours 20:00-08:00 in the clinic's zone, minimum
necessary texts, two-way SMS) [INF defaults, policy settings]; rule 6 and §2.2/§3 (fasting: IV
solids 6 h, clear liquids 2 h; esketamine food 2 h, liquids 30 min); rule 14, §1.10 and §2.2
(a responsible adult takes the patient home; no driving until the next day). Carrier keywords:
Twilio's default opt-out words (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT),
opt-in words (START, UNSTOP) and HELP/INFO.

Decisions the issue left open:
- Offsets are on the clinic's wall clock (48 h before a Monday 10:00 session is Saturday 10:00,
  even across a daylight-saving change); fasting times are real elapsed time before the start.
- YES confirms. Twilio's default opt-in list also has YES, so a YES from a patient who sent STOP
  lets the carrier deliver again, but here it only confirms: messages resume in opsmgr only on
  START or UNSTOP (clinics should remove YES from the Messaging Service's opt-in keywords).
  CANCEL is an opt-out word carriers require, never an appointment cancellation; the texts say
  to call to change or cancel.
- Quiet hours with start == end mean none. A message due in quiet hours is held to the window's
  end; one that would then go at or after its session's start is expired, never sent late.
"""
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from opsmgr.rules.followups import SessionFacts, wall_clock_after
from opsmgr.rules.scheduling import local_to_utc, short_day
from opsmgr.rules.session_states import SessionState

# --------------------------------------------------------------------------------------------
# Two-way SMS
# --------------------------------------------------------------------------------------------


class Reply(StrEnum):
    CONFIRM = "confirm"
    STOP = "stop"
    START = "start"
    HELP = "help"


REPLY_WORDS = {
    **dict.fromkeys(("YES", "Y", "C", "CONFIRM"), Reply.CONFIRM),
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"), Reply.STOP),
    **dict.fromkeys(("START", "UNSTOP"), Reply.START),
    **dict.fromkeys(("HELP", "INFO"), Reply.HELP),
}


def parse_reply(text: str | None) -> Reply | None:
    """What an SMS reply means: one keyword, ignoring case, spaces and punctuation ("Yes!", " y ",
    "Stop all", "opt-out"); anything else (a sentence, an emoji) is None and goes to staff."""
    if not text:
        return None
    word = "".join(ch for ch in unicodedata.normalize("NFKC", text).upper() if ch.isalnum())
    return REPLY_WORDS.get(word)


# --------------------------------------------------------------------------------------------
# Quiet hours and send times
# --------------------------------------------------------------------------------------------

def is_quiet(moment: datetime, policy, zone: str) -> bool:
    """Whether `moment` falls in quiet hours (from quiet_hours_start:00 up to, not including,
    quiet_hours_end:00 on the clinic's clock; the window may cross midnight)."""
    start, end = policy.quiet_hours_start, policy.quiet_hours_end
    if start == end:
        return False
    clock = moment.astimezone(ZoneInfo(zone)).time()
    if start < end:
        return time(start) <= clock < time(end)
    return clock >= time(start) or clock < time(end)


def quiet_hold(moment: datetime, policy, zone: str) -> datetime:
    """`moment`, or when it falls in quiet hours the window's end (quiet_hours_end:00 local) that follows."""
    if not is_quiet(moment, policy, zone):
        return moment
    local = moment.astimezone(ZoneInfo(zone))
    day = local.date() + timedelta(days=1) if local.time() >= time(policy.quiet_hours_end) else local.date()
    return local_to_utc(day, time(policy.quiet_hours_end), zone)


def when_to_send(due_at: datetime, expires_at: datetime | None, now: datetime, policy, zone: str) -> datetime | None:
    """When a message due at `due_at` may go, seen at `now`: not before it is due, held by quiet hours;
    None when that is at or after `expires_at` (the session's start): expired, never sent late."""
    at = quiet_hold(max(due_at, now), policy, zone)
    if expires_at is not None and at >= expires_at:
        return None
    return at


@dataclass(frozen=True)
class PlannedReminder:
    """One reminder to send. The key holds the session start and the offset, so moving the session or
    changing the offsets gives new keys (the old pending ones are cancelled by reconcile)."""

    key: str
    session_id: int
    hours_before: int
    due_at: datetime
    #: The session's start, or the next reminder's send time when that one supersedes this.
    expires_at: datetime
    #: Not worth creating after this (a later reminder is still to come); None for the last one.
    add_until: datetime | None
    #: The wall-clock time fell in quiet hours and was moved to their end.
    was_held: bool
    kind: str = "reminder"


def plan_reminders(session: SessionFacts, policy, zone: str) -> tuple[PlannedReminder, ...]:
    """The reminders a scheduled session wants, earliest first: one per policy offset (0: off), at the
    same wall-clock time that many hours before, held by quiet hours; dropped when the held time is at or
    after the start, or is the same as a later reminder's. None once the session is checked in,
    cancelled, missed or held."""
    if session.status != SessionState.SCHEDULED:
        return ()
    hours = sorted({h for h in (policy.reminder_first_hours, policy.reminder_second_hours) if h > 0}, reverse=True)
    timed = []
    for hours_before in hours:
        nominal = wall_clock_after(session.starts_at, -timedelta(hours=hours_before), zone)
        send_at = quiet_hold(nominal, policy, zone)
        if send_at < session.starts_at:
            timed.append((hours_before, send_at, send_at != nominal))
    # Two offsets held to the same moment are one message: the later reminder's.
    timed = [one for index, one in enumerate(timed) if index + 1 == len(timed) or one[1] < timed[index + 1][1]]
    start = f"{session.starts_at.astimezone(UTC):%Y%m%dT%H%MZ}"
    plan = []
    for index, (hours_before, send_at, held) in enumerate(timed):
        following = timed[index + 1][1] if index + 1 < len(timed) else None
        plan.append(PlannedReminder(
            key=f"reminder:session:{session.id}:{hours_before}h:{start}", session_id=session.id,
            hours_before=hours_before, due_at=send_at, expires_at=following or session.starts_at,
            add_until=send_at if following else None, was_held=held))
    return tuple(plan)


# --------------------------------------------------------------------------------------------
# What the visit needs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VisitNeeds:
    """Fasting cut-offs (aware, in the clinic's zone) and the standing instructions for a session."""

    starts_at: datetime
    eat_until: datetime
    drink_until: datetime
    #: What may be drunk until `drink_until`: "clear liquids" (IV) or "liquids" (esketamine).
    liquids: str
    needs_escort: bool = True
    no_driving_until_next_day: bool = True


def visit_needs(starts_at: datetime, route: str, policy, zone: str) -> VisitNeeds:
    """Fasting times from the session's start and the protocol's route (rule 6): IV no solids 6 h and
    clear liquids 2 h before; esketamine no food 2 h and no liquids 30 min before. An escort and no
    driving until the next day for both (Ketalar label, Spravato label)."""
    if route == "esketamine":
        food, drink, liquids = policy.esketamine_fast_food_minutes, policy.esketamine_fast_liquids_minutes, "liquids"
    else:
        food, drink, liquids = policy.iv_fast_solids_minutes, policy.iv_fast_liquids_minutes, "clear liquids"
    tz = ZoneInfo(zone)

    def before(minutes):
        return (starts_at - timedelta(minutes=minutes)).astimezone(tz)

    return VisitNeeds(starts_at=starts_at.astimezone(tz), eat_until=before(food), drink_until=before(drink),
                      liquids=liquids)


def _clock(moment: datetime, day: date) -> str:
    """ "06:00", or "22:00 on Mon 7 Dec" when the moment is not on the session's day."""
    text = f"{moment:%H:%M}"
    return text if moment.date() == day else f"{text} on {short_day(moment.date())}"


def instruction_values(needs: VisitNeeds) -> dict[str, str]:
    """The session placeholders of a reminder template, as text in the clinic's time."""
    day = needs.starts_at.date()
    return {"session_day": short_day(day), "session_time": f"{needs.starts_at:%H:%M}",
            "eat_until": _clock(needs.eat_until, day), "drink_until": _clock(needs.drink_until, day),
            "liquids": needs.liquids}


# --------------------------------------------------------------------------------------------
# Channel and texts
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelChoice:
    channel: str | None
    #: Why nothing is sent (None when a channel was chosen), as the worklist says it.
    reason: str | None = None


def reminder_channel(preference: str, *, consent_on: date | None, phone: str, email: str,
                     sms_opted_out: bool) -> ChannelChoice:
    """The channel to remind by, from the patient's preference and consent, or why there is none."""
    if preference not in {"sms", "email"}:
        return ChannelChoice(None, "The patient does not want reminders.")
    if consent_on is None:
        return ChannelChoice(None, "No contact consent on file.")
    if preference == "sms" and sms_opted_out:
        return ChannelChoice(None, "The patient opted out of texts (STOP).")
    if not (phone if preference == "sms" else email):
        return ChannelChoice(None, f"No {'phone number' if preference == 'sms' else 'email address'} on file.")
    return ChannelChoice(preference)


#: Placeholders a reminder template may use (an admin's template with any other is refused at save).
PLACEHOLDERS = {
    "clinic_name": "The clinic's name",
    "clinic_phone": "The clinic's phone number",
    "first_name": "The patient's first name (not in the default texts: minimum necessary)",
    "session_day": "The day of the appointment, e.g. Tue 8 Dec",
    "session_time": "The time of the appointment, e.g. 10:00",
    "eat_until": "Last time to eat",
    "drink_until": "Last time to drink",
    "liquids": "What may be drunk until then: clear liquids or liquids",
}
#: Default texts: no diagnosis, drug name or record number (minimum necessary).
DEFAULT_SMS = (
    "{{ clinic_name }}: your appointment is {{ session_day }} at {{ session_time }}. No food after {{ eat_until }}; "
    "{{ liquids }} only until {{ drink_until }}. An adult must take you home; no driving until the next day. "
    "Reply YES to confirm. To change or cancel, call {{ clinic_phone }}. Reply STOP to stop texts.")
DEFAULT_EMAIL_SUBJECT = "Your appointment on {{ session_day }} at {{ session_time }}"
DEFAULT_EMAIL_BODY = (
    "Hello,\n\n"
    "This is a reminder of your appointment at {{ clinic_name }} on {{ session_day }} at {{ session_time }}.\n\n"
    "- Please do not eat after {{ eat_until }}.\n"
    "- You may drink {{ liquids }} until {{ drink_until }}, then nothing.\n"
    "- Bring the adult who will take you home. Do not drive until the next day.\n\n"
    "To change or cancel the appointment, call {{ clinic_phone }}.\n\n"
    "{{ clinic_name }}\n")
HELP_REPLY = "{{ clinic_name }} appointment reminders. Call {{ clinic_phone }} for help. Reply STOP to stop texts."

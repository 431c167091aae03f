"""Report data: the session summary as plain values ready to print (clinic-zone times, units attached).

Built from the signed record (sessions.record.load_record) only, so a PDF can never disagree with
what the physician signed, and a later policy change never rewrites it. No Flask, no database: the
builders take the record and the clinic's zone, and are tested against worked examples.
"""
from decimal import Decimal

from opsmgr.notes.forms import AE_KIND_LABELS, AE_OUTCOME_LABELS, FIELD_GROUPS
from opsmgr.patients.models import Indication
from opsmgr.rules.findings import Severity

DATE = "%d %b %Y"
TIME = "%H:%M"
#: Labels of the note's fields, as the note page names them.
NOTE_LABELS = {
    "mindset": "Mindset", "intention": "Intention", "expectations": "Expectations", "worries": "Worries",
    "music": "Music", "eye_mask": "Eye mask", "lighting": "Lighting", "room": "Room",
    "support_person": "Support person", "setting_changes": "Changes to the setting",
    "dissociation_clinician": "Dissociation (clinician, 0-10)", "dissociation_patient": "Dissociation (patient, 0-10)",
    "emotional_tone": "Emotional tone", "themes": "Themes", "perceptual_effects": "Perceptual effects",
    "quotes": "Patient's words", "ending": "Ending", "post_session_state": "State after the session",
    "integration_plan": "Integration plan", "narrative": "Narrative",
}
INDICATIONS = frozenset(member.value for member in Indication)
GATES = {"start": "Start", "discharge": "Discharge"}
EVENTS = {"pause": "Paused", "resume": "Resumed", "stop": "Stopped"}


def number(value, unit=""):
    """A Decimal or int as a person writes it, with its unit: 0.500 → "0.5 mg/kg"; None → "—"."""
    if value is None:
        return "—"
    text = format(Decimal(value).normalize(), "f") if isinstance(value, Decimal) else str(value)
    return f"{text} {unit}".rstrip() if unit else text


def when(value, zone, fmt=f"{DATE} {TIME}"):
    """A UTC datetime in the clinic's zone; None → ""."""
    return value.astimezone(zone).strftime(fmt) if value is not None else ""


def stamp(value, zone):
    """Date, time and the zone's abbreviation, as a signature line prints it."""
    return value.astimezone(zone).strftime(f"{DATE} {TIME} %Z") if value is not None else ""


def yes_no(value):
    return "—" if value is None else ("Yes" if value else "No")


def session_summary(record, *, zone):
    """Everything the session summary prints, from a SessionRecord, as a dict of strings and lists."""
    visit = record.infusion_session
    return {
        "patient": patient_block(visit.patient),
        "session": session_block(record, zone),
        "checklist": checklist_block(record, zone),
        "overrides": [override_row(row, record.staff, zone) for row in record.overrides],
        "vitals": [vitals_row(row, record.staff, zone) for row in record.vitals],
        "chart_points": chart_points(record, zone),
        "alerts": [alert_row(row, record, zone) for row in record.alerts],
        "events": [event_row(row, record.staff, zone) for row in record.infusion_events],
        "dose": dose_block(record, zone),
        "controlled_substance": controlled_block(record.controlled_substance, record.staff, zone),
        "adverse_events": [adverse_row(row, zone) for row in record.adverse_events],
        "discharge": discharge_block(record.discharge, record.staff, zone),
        "note": note_sections(record.note),
        "addenda": [addendum_block(row, zone) for row in record.addenda],
        "signature": signature_block(record.note, zone),
    }


def patient_block(patient):
    return {"name": patient.legal_name, "preferred_name": patient.preferred_name or "", "mrn": patient.mrn,
            "date_of_birth": patient.date_of_birth.strftime(DATE)}


def session_block(record, zone):
    visit, series = record.infusion_session, record.infusion_session.series
    protocol = series.protocol
    versions = record.policy_versions
    return {
        "date": when(visit.starts_at, zone, DATE),
        "time": f"{when(visit.starts_at, zone, TIME)}–{when(visit.ends_at, zone, TIME)}",
        "chair": visit.chair.name if visit.chair is not None else "",
        "status": visit.status.replace("_", " ").capitalize(),
        "position": f"Session {visit.number} of {series.planned_count}",
        "protocol": f"{protocol.name} ({protocol.code}, version {protocol.version})",
        "policy_versions": ", ".join(str(version) for version in versions) if versions else "—",
    }


def checklist_block(record, zone):
    row = record.checklist
    if row is None:
        return None
    return {
        "outcome": (row.outcome or "not evaluated").replace("_", " ").capitalize(),
        "evaluated_at": when(row.evaluated_at, zone),
        "policy_version": number(row.policy_version),
        "findings": [{"severity": severity_label(finding.severity),
                      "code": finding.code, "message": finding.message} for finding in record.checklist_findings],
    }


def severity_label(severity):
    """The one wording of a severity (rules.findings), as every page prints it."""
    try:
        return Severity(severity).label
    except ValueError:
        return str(severity).replace("_", " ").capitalize()


def override_row(row, staff, zone):
    finding = row.finding or {}
    return {"gate": GATES.get(row.gate, row.gate), "code": row.code, "finding": finding.get("message", ""),
            "reason": row.reason, "by": staff.get(row.physician_id, "—"), "at": when(row.created_at, zone)}


def vitals_row(row, staff, zone):
    pressure = f"{row.systolic}/{row.diastolic} mmHg" if row.systolic is not None else "—"
    in_error = row.entered_in_error_at is not None
    return {"time": when(row.taken_at, zone, TIME), "bp": pressure, "heart_rate": number(row.heart_rate, "/min"),
            "spo2": number(row.spo2, "%"), "moaas": number(row.moaas), "by": staff.get(row.recorded_by_id, "—"),
            "in_error": in_error,
            "in_error_note": (f"Entered in error: marked by {staff.get(row.entered_in_error_by_id, '—')} at "
                              f"{when(row.entered_in_error_at, zone, TIME)}: {row.entered_in_error_reason}")
            if in_error else ""}


def chart_points(record, zone):
    """The counted readings for the chart: (taken at, in the clinic's zone; systolic, diastolic, heart rate, SpO2)."""
    return [(row.taken_at.astimezone(zone), row.systolic, row.diastolic, row.heart_rate, row.spo2)
            for row in record.counted_vitals]


def alert_row(row, record, zone):
    withdrawn = row.id in record.withdrawn
    return {"time": when(row.raised_at, zone, TIME), "message": row.message,
            "action": (row.action or "not acknowledged").capitalize(), "note": row.note, "drug_given": row.drug_given,
            "by": record.staff.get(row.acknowledged_by_id, "") if row.acknowledged_by_id else "",
            "withdrawn": withdrawn}


def event_row(row, staff, zone):
    return {"time": when(row.occurred_at, zone, TIME), "kind": EVENTS.get(row.kind, row.kind), "note": row.note,
            "by": staff.get(row.recorded_by_id, "—")}


def dose_block(record, zone):
    dose = record.dose
    if dose is None:
        return None
    if dose.mg_per_kg is not None:
        amount = (f"{number(dose.mg_per_kg, 'mg/kg')} × {number(dose.weight_kg, 'kg')} = "
                  f"{number(dose.dose_mg, 'mg')}")
    else:
        amount = number(dose.dose_mg, "mg")
    order = record.dose_order
    return {"amount": amount, "minutes": number(dose.infusion_minutes, "min"),
            "started": when(dose.dose_started_at, zone, TIME), "ended": when(dose.infusion_ended_at, zone, TIME),
            "change_reason": dose.change_reason,
            "changed_by": record.staff.get(dose.changed_by_id, "") if dose.changed_by_id else "",
            "order": f"Ordered by {record.staff.get(order.ordered_by_id, '—')}: {order.reason}" if order else "",
            "policy_version": number(dose.policy_version)}


def controlled_block(row, staff, zone):
    if row is None:
        return None
    return {"product": row.product, "lot": row.lot, "expiry": row.expiry_on.strftime(DATE),
            "drawn": number(row.drawn_mg, "mg"), "given": number(row.given_mg, "mg"),
            "wasted": number(row.wasted_mg, "mg"), "shortfall_reason": row.shortfall_reason,
            "recorded_by": staff.get(row.recorded_by_id, "—"), "witness": staff.get(row.witness_id, "—"),
            "at": when(row.recorded_at, zone)}


def adverse_row(row, zone):
    kind = row.other_kind if row.kind == "other" and row.other_kind else AE_KIND_LABELS.get(row.kind, row.kind)
    return {"kind": kind, "onset": when(row.onset_at, zone, TIME), "severity": row.severity.capitalize(),
            "intervention": row.intervention, "drug_given": row.drug_given,
            "outcome": AE_OUTCOME_LABELS.get(row.outcome, row.outcome)}


def discharge_block(row, staff, zone):
    if row is None:
        return None
    return {"at": when(row.discharged_at, zone), "by": staff.get(row.discharged_by_id, "—"),
            "moaas": number(row.moaas), "escort_present": yes_no(row.escort_present),
            "instructions_given": yes_no(row.instructions_given), "condition": row.condition}


def note_sections(note):
    """[(section title, [(label, text)])] for the note's filled fields, in the note page's order."""
    if note is None:
        return []
    sections = []
    for _key, title, names in FIELD_GROUPS:
        fields = []
        for name in names:
            value = getattr(note, name)
            text = yes_no(value) if isinstance(value, bool) else ("" if value is None else str(value))
            if text.strip():
                fields.append((NOTE_LABELS.get(name, name), text))
        if fields:
            sections.append((title, fields))
    return sections


def addendum_block(row, zone):
    signer = f"{row.author_name}, {row.author_credentials}" if row.author_credentials else row.author_name
    return {"signer": signer, "signed_at": stamp(row.signed_at, zone), "reason": row.reason, "body": row.body,
            "event_at": when(row.event_at, zone), "sha256": row.content_hash}


def signature_block(note, zone):
    """The note's signature (None while unsigned): who, with what credentials, when, and the record's SHA-256."""
    if note is None or note.signed_at is None:
        return None
    signer = f"{note.signer_name}, {note.signer_credentials}" if note.signer_credentials else note.signer_name
    return {"signer": signer, "name": note.signer_name, "credentials": note.signer_credentials,
            "signed_at": stamp(note.signed_at, zone), "signed_at_utc": note.signed_at, "sha256": note.content_hash}


# --- the series summary ----------------------------------------------------------------------

#: How a follow-up's state prints on the series summary.
FOLLOW_UP_STATES = {"open": "Open", "escalated": "Escalated to a physician", "done": "Done",
                    "cancelled": "Cancelled", "expired": "Expired"}


def series_summary(series, *, patient, rows, outcome, scores, follow_ups, kind_labels, summary_text, signer, signed_at,
                   zone):
    """Everything the series summary prints, as strings and lists.

    `rows`: (session, SessionRecord or None) in series order, a record for every session that took place;
    `outcome`: the rules.outcomes SeriesOutcome; `scores`: the series' PHQ-9/GAD-7 rows (checklist and phone);
    `follow_ups`: the series' follow-up rows; `signer`: "Name, credentials" once signed (None for a draft).
    """
    scores_by_session = {}
    for score in scores:
        if score.session_id is not None:
            scores_by_session.setdefault(score.session_id, {})[score.instrument] = score.total
    protocol = series.protocol
    return {
        "patient": patient_block(patient),
        "series": {
            "protocol": f"{protocol.name} ({protocol.code}, version {protocol.version})",
            "indication": Indication(series.indication).label if series.indication in INDICATIONS else "",
            "planned": f"{series.planned_count} sessions planned",
            "started": series.start_on.strftime(DATE),
            "status": series.status.capitalize(),
            "covered": sum(1 for _, record in rows if record is not None),
        },
        "sessions": [series_row(visit, record, scores_by_session.get(visit.id, {}), zone) for visit, record in rows],
        "outcome": outcome_block(outcome, zone),
        "scores": [{"date": when(score.taken_at, zone, DATE), "instrument": score.instrument, "total": score.total,
                    "where": "Checklist" if score.session_id is not None else "Phone"} for score in scores],
        "follow_ups": [{"kind": kind_labels.get(item.kind, item.kind), "due": when(item.due_at, zone, DATE),
                        "state": FOLLOW_UP_STATES.get(item.status, item.status),
                        "closed": when(item.closed_at, zone, DATE), "outcome": item.outcome}
                       for item in follow_ups],
        "summary_text": summary_text or "",
        "signature": {"signer": signer, "signed_at": stamp(signed_at, zone)} if signer else None,
    }


def series_row(visit, record, scores, zone):
    """One line of the series table: date, dose, peak blood pressure, adverse events, PHQ-9 and GAD-7."""
    row = {"number": visit.number, "date": when(visit.starts_at, zone, DATE),
           "status": visit.status.replace("_", " ").capitalize(), "dose_mg_per_kg": "—", "dose_mg": "—",
           "peak_bp": "—", "adverse_events": "—", "phq9": number(scores.get("PHQ-9")),
           "gad7": number(scores.get("GAD-7"))}
    if record is None:
        return row
    if record.dose is not None:
        row["dose_mg_per_kg"] = number(record.dose.mg_per_kg, "mg/kg")
        row["dose_mg"] = number(record.dose.dose_mg, "mg")
    readings = [v for v in record.counted_vitals if v.systolic is not None]
    if readings:
        peak = max(readings, key=lambda v: (v.systolic, v.diastolic or 0))
        row["peak_bp"] = f"{peak.systolic}/{peak.diastolic}"
    if record.adverse_events:
        row["adverse_events"] = "; ".join(
            f"{adverse_row(event, zone)['kind']} ({event.severity})" for event in record.adverse_events)
    else:
        row["adverse_events"] = "None"
    return row


def outcome_block(outcome, zone):
    """Baseline, response and remission of the series, in words (rules.outcomes decided them)."""
    if outcome.baseline is None:
        text = "No baseline PHQ-9 (none was taken at the checklist before the first dose)."
        return {"baseline": "—", "response": text, "remission": text, "days": ""}
    if not outcome.later_scores:
        later = "No PHQ-9 has been taken since the baseline."
        return {"baseline": str(outcome.baseline), "response": later, "remission": later, "days": ""}
    if outcome.is_response is None:
        response = "Not assessable: a baseline of 0 cannot fall by half."
    else:
        response = "Yes" if outcome.is_response else "Not yet"
    return {"baseline": str(outcome.baseline), "response": response,
            "remission": "Yes" if outcome.is_remission else "Not yet",
            "days": f"{outcome.days_to_response} days after the baseline" if outcome.days_to_response is not None
            else ""}

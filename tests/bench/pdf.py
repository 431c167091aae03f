"""The signed PDF summaries against WeasyPrint alone on the very same final HTML, in one run.

    python -m tests.bench.pdf [--db sqlite|postgres] [--runs N] [--sessions 12] [--out DIR]

For each report kind, the app's whole path to a first download (the record read from the database,
the data builders, the chart, the template, WeasyPrint and the PAdES signature) against
``reports.render.html_to_pdf`` alone on the final HTML that path produced, with the same in-memory
assets (captured from the warm-up render). The two are interleaved (alternating which goes first),
each warmed up once, and the median of N runs of each is compared: ratio = app / WeasyPrint alone
(issue 13: at most 1.5, goal 1.3). Written as JSON under tests/bench/results/ and printed as one table.

Data: a fresh migrated database in a temporary instance folder (its own signing key too), filled
through the app's services as the demo's chair does it (opsmgr.demo.chair.AtTheChair): a signed IV
session with its checklist, eight vitals readings (one raising an acknowledged alert), dose,
controlled substance, an adverse event, discharge, a filled note and one addendum; and an esketamine
series of N sessions (default 12), every one held, discharged and signed, its PHQ-9 falling from 19
to 4. Staff passwords use cheap argon2 parameters (setup only: nothing in a PDF's path hashes a
password). The table gives wall-clock medians and their ratio (what the target is about), the ratio
of this process's CPU time beside it (steadier on a busy machine), and SQL statements per report.

Environment: BENCH_DB, BENCH_PDF_RUNS (the flags win).
"""
import argparse
import contextlib
import gc
import json
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Runs of each side per report kind: about a minute in all on a developer's machine.
DEFAULT_RUNS = 8
ZONE = "America/New_York"
#: A Monday well in the past, so every service is given a consistent clock of its own.
START_ON = date(2026, 9, 14)
PASSWORD = "bench passphrase, not for production"

#: (key, label) of the report kinds in table order.
KINDS = (
    ("session", "Session summary (signed)"),
    ("series", "Series summary (signed)"),
)
TARGET, GOAL = 1.5, 1.3

NOTE = {
    "mindset": "Calm, a little tired after a long week at work; looking forward to the session.",
    "intention": "To get back to my morning walks and answer my sister's calls.",
    "expectations": "Some floating and colours, as last time; hopes for the lighter mood to last longer.",
    "worries": "Nausea on the drive home.",
    "music": "Ambient piano playlist, no lyrics", "eye_mask": True, "lighting": "Dimmed, warm lamp",
    "room": "Window chair, blinds half closed", "support_person": "Sister waited in the lounge.",
    "dissociation_clinician": 6, "dissociation_patient": 7,
    "emotional_tone": "Tearful for a few minutes at 20 minutes, then settled and content.",
    "themes": "Grief about her father; relief at letting it be there without fixing it.",
    "perceptual_effects": "Floating, slowed time, bright geometric colours with eyes closed.",
    "quotes": "\u201cIt felt like putting a heavy bag down.\u201d",
    "ending": "Gentle return over ten minutes; asked for water and a blanket.",
    "post_session_state": "Oriented, steady gait, back to baseline; left with her sister.",
    "integration_plan": "Journal tonight; integration session with her therapist on Thursday.",
    "narrative": ("Uneventful infusion at the protocol dose over 40 minutes. Moderate dissociation, peaking at "
                  "20 minutes. Brief nausea at 25 minutes settled with ondansetron. Blood pressure rose modestly "
                  "and returned to baseline in recovery. Discharged with her escort after the observation period. ")
                 * 3,
}
ADDENDUM = ("Telephone follow-up the next morning: slept well, mild headache on waking that settled with "
            "paracetamol, no nausea; mood 'lighter than in months'. Integration session confirmed for Thursday.")
SERIES_SUMMARY = ("Twelve esketamine sessions over eight weeks, all completed as planned. PHQ-9 fell from 19 at "
                  "baseline to 4, a response and then remission; GAD-7 from 14 to 6. Blood pressure rises were "
                  "transient and none needed treatment. Continue with maintenance sessions every two weeks; review "
                  "in three months.")


@dataclass
class Data:
    session_id: int
    series_id: int
    series_sessions: int
    physician_id: int
    vitals: int


# --- the data -------------------------------------------------------------------------------------

class _BenchConfig:
    """The production configuration with the test suite's cheap argon2 parameters (see the docstring)."""

    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 64
    ARGON2_PARALLELISM = 1


def make_app(url, folder):
    from config import Config
    from opsmgr import create_app

    config_class = type("BenchConfig", (_BenchConfig, Config), {})
    return create_app(config_class({
        "OPSMGR_DATABASE_URL": url, "OPSMGR_INSTANCE_PATH": str(folder / "instance"), "OPSMGR_TIMEZONE": ZONE,
        "OPSMGR_SECRET_KEY": secrets.token_hex(32), "OPSMGR_AUDIT_KEY": secrets.token_hex(32),
        "OPSMGR_CLINIC_NAME": "Riverside Infusion Clinic", "OPSMGR_LOG_LEVEL": "WARNING"}))


def build_data(app, series_sessions=12):
    """Migrate and fill the database through the services; returns the ids the measurements need."""
    from flask_migrate import upgrade

    from opsmgr.extensions import db

    logging.getLogger("alembic").setLevel(logging.WARNING)
    with app.app_context():
        upgrade()
        builder = _Builder()
        visit, vitals = builder.signed_iv_session()
        series = builder.signed_series(series_sessions)
        data = Data(session_id=visit.id, series_id=series.id, series_sessions=series_sessions,
                    physician_id=builder.physician.id, vitals=vitals)
        db.session.commit()
        db.session.remove()
    return data


class _Builder:
    """Staff, chairs and patients, and sessions walked the way the demo's chair walks them."""

    def __init__(self):
        from opsmgr.audit.service import Actor
        from opsmgr.auth import service as auth
        from opsmgr.clinic.service import create_chair
        from opsmgr.schedule.service import local_day_bounds

        self.actor = Actor(user_id=None, username="bench-seed", role=None, ip=None)
        now = self.local(START_ON - timedelta(days=30), 8)
        staff = {}
        for username, full_name, role, credentials in (
                ("nurse", "Marisol Achterberg-Nwosu", "nurse", "RN"),
                ("physician", "Dr. Tobias Ellingsen-Ramírez", "physician", "MD, PhD")):
            staff[username] = auth.create_staff(username=username, full_name=full_name, role=role,
                                                credentials=credentials, password=PASSWORD, actor=self.actor, now=now)
        self.physician = staff["physician"]
        for number, name in enumerate(("Chair 1", "Chair 2", "Window chair"), start=1):
            create_chair(name=name, position=number, actor=self.actor, now=now)
        self.day_bounds = local_day_bounds
        self.passwords = {"nurse": PASSWORD, "physician": PASSWORD}

    @staticmethod
    def local(day, hour, minute=0):
        from opsmgr.rules.scheduling import local_to_utc

        return local_to_utc(day, datetime.min.time().replace(hour=hour, minute=minute), ZONE)

    def patient(self, name, mrn, born, kg, phone):
        from opsmgr.patients import service as patients

        now = self.local(START_ON - timedelta(days=20), 9)
        patient = patients.register_patient({
            "mrn": mrn, "legal_name": name, "preferred_name": "", "date_of_birth": born,
            "sex_at_birth": "female", "pregnancy_possible": False, "phone": f"(503) 555-01{phone}",
            "email": f"{mrn.lower()}@example.org", "reminder_channel": "none", "contact_consent_on": None,
            "escort_name": "Ines Okonkwo-Hartley", "escort_phone": f"(503) 555-01{phone + 1}", "indication": "trd",
            "indication_detail": "Recurrent episodes since 2015", "failed_trials": 3, "allergies": "Penicillin (rash)",
        }, actor=self.actor, now=now)
        patients.add_weight(patient, kg=Decimal(kg), measured_on=START_ON - timedelta(days=20), actor=self.actor,
                            now=now)
        patients.record_consent(patient, consent_on=START_ON - timedelta(days=20), form_version="CONSENT-v3",
                                actor=self.actor, now=now)
        return patient

    def series(self, patient, protocol_code, count):
        from sqlalchemy import select

        from opsmgr.audit.service import Actor
        from opsmgr.extensions import db
        from opsmgr.series import service as series_service
        from opsmgr.series.models import Protocol
        from tests.factories import series_order

        protocol = db.session.scalar(select(Protocol).where(Protocol.code == protocol_code, Protocol.is_current))
        actor = Actor(user_id=self.physician.id, username=self.physician.username, role="physician")
        order = series_order(patient_id=patient.id, protocol=protocol, start_on=START_ON, preferred_time="09:00",
                             planned_count=count)
        now = self.local(START_ON - timedelta(days=7), 16)
        plan = series_service.plan_series(order, now=now)
        return series_service.order_series(order, confirmed=plan.code, actor=actor, now=now)

    def hold(self, visit, before_discharge=None, scores=None):
        """Check-in, checklist, dose, controlled substance, every reading, discharge (AtTheChair's steps);
        `before_discharge(nurse, dose_at)` adds to the session before the patient leaves; `scores` (PHQ-9,
        GAD-7 totals) replace the demo checklist's answers."""
        from opsmgr.checklist import service as checklist
        from opsmgr.demo.chair import AtTheChair, checklist_answers
        from opsmgr.infusion import service as infusion
        from opsmgr.rules.session_states import SessionState
        from opsmgr.schedule import service as schedule
        from opsmgr.schedule.service import as_local

        day = as_local(visit.starts_at, ZONE).date()
        chair = AtTheChair(visit.starts_at, self.passwords, day_starts_at=self.day_bounds(day, ZONE)[0])
        checked_in, dose_at = visit.starts_at, visit.starts_at + timedelta(minutes=25)
        schedule.change_status(visit, SessionState.CHECKED_IN, reason="", actor=chair.nurse, now=checked_in)
        answers = checklist_answers(visit, dose_at - timedelta(minutes=10))
        if scores is not None:
            answers["phq9_items"], answers["gad7_items"] = _items(scores[0], 9), _items(scores[1], 7)
        checklist.fill_checklist(visit, answers,
                                 expected_version=checklist.NOT_SAVED, actor=chair.nurse,
                                 now=dose_at - timedelta(minutes=10))
        chair.dose(visit, dose_at, until=dose_at + timedelta(hours=4))  # every timepoint of the dose is taken
        if before_discharge is not None:
            before_discharge(chair.nurse, dose_at)
        chair.discharge(visit)
        return chair, dose_at, infusion.readings_for(visit)

    def sign(self, visit, nurse, values, at, adverse_event=None):
        from opsmgr.notes import service as notes

        if adverse_event:
            notes.add_adverse_event(visit, adverse_event, actor=nurse, now=at)
        saved = notes.save_draft(visit, values, expected_version=0, actor=nurse, now=at).row
        notes.complete_note(visit, expected_version=saved.version, actor=nurse, now=at)
        notes.sign_note(visit, physician=self.physician, password=PASSWORD, expected_version=saved.version, ip=None,
                        now=at + timedelta(hours=3))

    def signed_iv_session(self):
        """The first session of an IV induction, held and signed, with an adverse event and one addendum."""
        from opsmgr.notes import service as notes

        patient = self.patient("Avery Lindqvist-Okafor", "RIV-004211", date(1986, 3, 14), "68.4", 42)
        visit = self.series(patient, "iv-induction", None).sessions[0]
        chair, dose_at, readings = self.hold(visit, before_discharge=lambda nurse, dose_at: self.alert(
            visit, nurse, dose_at + timedelta(minutes=15)))
        nausea = {"kind": "nausea", "other_kind": "", "onset_at": dose_at + timedelta(minutes=25), "severity": "mild",
                  "intervention": "Infusion slowed for five minutes; ondansetron given.",
                  "drug_given": "Ondansetron 4 mg IV", "outcome": "resolved"}
        at = visit.ends_at + timedelta(minutes=15)
        self.sign(visit, chair.nurse, NOTE, at, adverse_event=nausea)
        notes.add_addendum(visit, author=self.physician, password=PASSWORD, reason="Follow-up call", body=ADDENDUM,
                           event_at=at + timedelta(hours=18), ip=None, now=at + timedelta(days=1))
        return visit, len(readings)

    @staticmethod
    def alert(visit, nurse, at):
        """A reading between the timepoints above the blood-pressure alert, acknowledged: the rate halved."""
        from opsmgr.infusion import vitals

        _row, alerts = vitals.record_vitals(visit, systolic=184, diastolic=112, heart_rate=88, spo2=97, moaas=4,
                                            taken_at=at, actor=nurse, now=at + timedelta(minutes=60))
        for alert in alerts:
            vitals.acknowledge_alert(alert, action="slow", note="Rate halved; recheck in 5 minutes.", drug_given="",
                                     actor=nurse, now=at + timedelta(minutes=61))

    def signed_series(self, count):
        """An esketamine induction of `count` sessions, every one held, discharged and signed."""
        patient = self.patient("Harper Valdés-Nakamura", "RIV-007730", date(1979, 8, 2), "74.8", 62)
        series = self.series(patient, "esketamine-induction", count)
        for number, visit in enumerate(series.sessions):
            progress = number / max(1, count - 1)  # PHQ-9 19 → 4 (response, then remission), GAD-7 14 → 6
            chair, _dose_at, _readings = self.hold(visit, scores=(19 - round(15 * progress), 14 - round(8 * progress)))
            values = {name: NOTE[name] for name in ("mindset", "intention", "dissociation_clinician",
                                                    "post_session_state")}
            values["narrative"] = NOTE["narrative"][:300]
            self.sign(visit, chair.nurse, values, visit.ends_at + timedelta(minutes=15))
        return series


def _items(total, count):
    """Questionnaire answers (0-3 each) adding up to `total`, the last item (PHQ-9's self-harm) 0."""
    answers = [0] * count
    for index in range(total):
        answers[index % (count - 1)] += 1
    return answers


# --- measuring ------------------------------------------------------------------------------------

@contextlib.contextmanager
def captured_html():
    """Record the (html, static folder, assets) the app hands WeasyPrint, while the app renders as usual."""
    from opsmgr.reports import render

    original, calls = render.html_to_pdf, []

    def recording(html, static_folder, assets=None):
        calls.append((html, static_folder, dict(assets or {})))
        return original(html, static_folder, assets)

    render.html_to_pdf = recording
    try:
        yield calls
    finally:
        render.html_to_pdf = original


def compare(app, app_once, runs):
    """Warm up once (capturing the final HTML and counting SQL statements), then `runs` interleaved timings
    of the app's whole path and of WeasyPrint alone on that HTML; returns the measurement as a dict.
    Wall-clock time decides (the ratio); CPU time of this process is reported beside it, steadier on a busy
    machine but blind to the database server's share. The heap is collected before every timed call: a
    WeasyPrint render leaves tens of thousands of objects in reference cycles, and without it a full
    collection started by one side's allocations cleans up after both (about 0.1-0.2 s a time)."""
    from opsmgr.reports.render import html_to_pdf
    from tests.sql import count_statements

    with captured_html() as calls, count_statements(app) as statements:
        content = app_once()
    if len(calls) != 1:
        raise RuntimeError(f"the report rendered {len(calls)} HTML documents, expected 1")
    html, static, assets = calls[0]
    bare = html_to_pdf(html, static, assets)
    times = {"app": ([], []), "weasyprint": ([], [])}
    sides = [("app", app_once), ("weasyprint", lambda: html_to_pdf(html, static, assets))]
    full_collections = {"app": 0, "weasyprint": 0}
    for number in range(runs):
        for name, call in sides if number % 2 == 0 else reversed(sides):
            gc.collect()  # each run starts from a collected heap: no side pays for the other's garbage
            collections = gc.get_stats()[2]["collections"]
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            times[name][0].append(time.perf_counter() - wall)
            times[name][1].append(time.process_time() - cpu)
            full_collections[name] += gc.get_stats()[2]["collections"] - collections
    (app_wall, app_cpu), (bare_wall, bare_cpu) = ([statistics.median(values) * 1000 for values in times[name]]
                                                  for name in ("app", "weasyprint"))
    return {"app_ms": round(app_wall, 1), "weasyprint_ms": round(bare_wall, 1),
            "ratio": round(app_wall / bare_wall, 3),
            "app_cpu_ms": round(app_cpu, 1), "weasyprint_cpu_ms": round(bare_cpu, 1),
            "cpu_ratio": round(app_cpu / bare_cpu, 3),
            "app_runs_ms": [round(t * 1000, 1) for t in times["app"][0]],
            "weasyprint_runs_ms": [round(t * 1000, 1) for t in times["weasyprint"][0]],
            "full_gc_per_run": {name: round(count / runs, 2) for name, count in full_collections.items()},
            "statements": statements["n"], "pages": _pages(content), "app_bytes": len(content),
            "weasyprint_bytes": len(bare), "html_chars": len(html), "signed": b"/ByteRange" in content}


def _pages(content):
    import io

    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(content)).pages)


def _fresh(call):
    """Run `call` as a request would: a new database session, nothing cached in the identity map."""
    from opsmgr.extensions import db

    def fresh():
        db.session.remove()
        return call()

    return fresh


def measure_session(app, data, runs):
    """A first download of a signed session's summary: session_summary_pdf(load_record(id), document_id=new)."""
    from opsmgr.reports import service
    from opsmgr.sessions.record import load_record

    def once():
        return service.session_summary_pdf(load_record(data.session_id), document_id=service.new_document_id())

    with app.app_context():
        result = compare(app, _fresh(once), runs)
    return result | {"what": f"1 session, {data.vitals} vitals readings, note, adverse event, 1 addendum"}


def measure_series(app, data, runs):
    """A signed series summary of every session (None when the app has no series_summary_pdf yet)."""
    from opsmgr.reports import service

    make = series_summary_pdf()
    if make is None:
        return None
    from opsmgr.auth.models import StaffUser
    from opsmgr.extensions import db
    from opsmgr.series.models import InfusionSeries

    signed_at = datetime.now(UTC).replace(microsecond=0)

    def once():
        series = db.session.get(InfusionSeries, data.series_id)
        return make(series, summary_text=SERIES_SUMMARY, signer=db.session.get(StaffUser, data.physician_id),
                    signed_at=signed_at, document_id=service.new_document_id())

    with app.app_context():
        result = compare(app, _fresh(once), runs)
    return result | {"what": f"{data.series_sessions} signed sessions, physician's summary"}


def series_summary_pdf():
    """The app's series_summary_pdf (reports.series, or reports.service), None while there is none."""
    import importlib

    for name in ("opsmgr.reports.series", "opsmgr.reports.service"):
        with contextlib.suppress(ImportError):
            found = getattr(importlib.import_module(name), "series_summary_pdf", None)
            if found is not None:
                return found
    return None


#: One measurement function per report kind (None: the app cannot make that report yet).
MEASURES = {"session": measure_session, "series": measure_series}


# --- the run --------------------------------------------------------------------------------------

def run(db="sqlite", runs=DEFAULT_RUNS, sessions=12, out=None, echo=print):
    """One whole benchmark; returns the result dict (also written to `out`/<time>-pdf-<db>.json)."""
    from tests.bench.bench import database

    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="opsmgr-pdf-") as tmp:
        folder = Path(tmp)
        with database(db, folder) as url:
            app = make_app(url, folder)
            echo(f"pdf bench: filling a fresh {db} database in {folder} ...")
            data = build_data(app, sessions)
            reports, skipped = {}, {}
            for key, _label in KINDS:
                echo(f"pdf bench: {key} summary, {runs} runs of each side ...")
                measured = MEASURES[key](app, data, runs)
                if measured is None:
                    skipped[key] = "the app has no series_summary_pdf yet"
                else:
                    reports[key] = measured
            with app.app_context():
                from opsmgr.extensions import db as database_

                database_.session.remove()
                database_.engine.dispose()
    output = {"db": db, "runs": runs, "started_at": started.isoformat(timespec="seconds"),
              "python": sys.version.split()[0], "weasyprint": _version("weasyprint"), "pyhanko": _version("pyhanko"),
              "target_ratio": TARGET, "goal_ratio": GOAL, "reports": reports, "skipped": skipped}
    target = Path(out or HERE / "results")
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{started.strftime('%Y-%m-%dT%H%M%SZ')}-pdf-{db}.json"
    path.write_text(json.dumps(output, indent=1) + "\n")
    output["written_to"] = str(path)
    echo(table(output))
    return output


def _version(name):
    from importlib.metadata import version

    return version(name)


def table(output):
    lines = [f"PDF summaries ({output['db']}): median of {output['runs']} interleaved runs each, after one warm-up; "
             f"WeasyPrint {output['weasyprint']}, pyHanko {output['pyhanko']}",
             "",
             f"{'report':<28} {'pages':>5} {'SQL':>4} {'app ms':>7} {'WeasyPrint ms':>13} {'× WeasyPrint':>12} "
             f"{'(CPU ×)':>8}  target"]
    for key, label in KINDS:
        if key in output["reports"]:
            report = output["reports"][key]
            verdict = "goal met" if report["ratio"] <= GOAL else ("ok" if report["ratio"] <= TARGET else "OVER")
            lines.append(f"{label:<28} {report['pages']:>5} {report['statements']:>4} {report['app_ms']:>7.0f} "
                         f"{report['weasyprint_ms']:>13.0f} {report['ratio']:>12.2f} {report['cpu_ratio']:>8.2f}  "
                         f"≤ {TARGET} (goal {GOAL}): {verdict}")
        else:
            lines.append(f"{label:<28} skipped: {output['skipped'][key]}")
    lines.append(f"written to {output.get('written_to', '-')}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default=os.environ.get("BENCH_DB") or "sqlite")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_PDF_RUNS") or DEFAULT_RUNS))
    parser.add_argument("--sessions", type=int, default=12, help="sessions in the series (default 12)")
    parser.add_argument("--out", default=None, help="folder for the JSON (default tests/bench/results)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.sessions < 1:
        parser.error("--runs and --sessions must be at least 1")
    try:
        run(db=args.db, runs=args.runs, sessions=args.sessions, out=args.out)
    except RuntimeError as error:
        raise SystemExit(f"pdf bench: {error}") from None


if __name__ == "__main__":
    main()

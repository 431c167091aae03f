"""A world with canary PHI for the whole-surface sweeps (tests/test_object_access.py, tests/test_csrf_sweep.py).

Two patients, A and B, each on today's IV induction and infusing: a weight (recorded by the nurse), a
medication and a contraindication, a reading whose 185/112 raised an alert, an adverse event, a note draft,
and (A) a physician task, a follow-up and a stored report document. Every value of A and B that is PHI is a
canary: a string found nowhere else, so a response carrying one shows a leak. One account per role, a second
nurse (not the author of A's entries), a target account, the coordinator's calendar-feed token, a chair tablet
and a clinic closure complete it.

IDS says how to fill each URL argument; a route with an argument it does not know fails the sweeps.
"""
import hashlib
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta

from sqlalchemy import func, select, text

from opsmgr.audit.models import AuditEvent
from opsmgr.auth import tablets
from opsmgr.auth.models import StaffUser
from opsmgr.checklist import service as checklist
from opsmgr.clinic import closures
from opsmgr.extensions import db
from opsmgr.feeds import service as feeds
from opsmgr.followups.models import FollowUp
from opsmgr.infusion.models import InChairAlert, VitalSign
from opsmgr.notes.models import AdverseEvent
from opsmgr.patients import service as patients
from opsmgr.patients.models import Patient, PatientWeight
from opsmgr.reports.models import ReportDocument
from opsmgr.restricted.models import BreakGlassEvent
from opsmgr.schedule.service import change_status
from opsmgr.series.models import Protocol
from opsmgr.tasks.models import PhysicianTask
from tests.conftest import PASSWORD, FrozenClock, StaffClient, sign_in
from tests.factories import FACTORY_ACTOR, create_chairs, create_patient, create_user, order_series
from tests.shared_world import worlds_by_backend
from tests.test_infusion import TODAY, clear_answers, fields, start, vitals
from tests.test_permissions import REQUESTS

#: The PHI of each patient: none of it may appear in a refused response.
CANARIES = {
    "A": {"legal_name": "Quintessa Marigold Canarybright", "mrn": "CANARY-7731", "date_of_birth": date(1917, 3, 5),
          "phrase": "lighthouse marmalade canary phrase"},
    "B": {"legal_name": "Oberon Thistlewood Sparrowfax", "mrn": "CANARY-8842", "date_of_birth": date(1923, 8, 19),
          "phrase": "copper kettle sparrow phrase"},
}
#: The accounts: username -> role. "nurse" records A's and B's entries; "nurse2" recorded none of them.
STAFF = {"nurse": "nurse", "nurse2": "nurse", "coordinator": "coordinator", "physician": "physician",
         "admin": "admin", "target": "nurse"}
STAFF_ROLES = ("nurse", "coordinator", "physician", "admin")
DOCUMENT_ID = "CANARYDOCUMENT0001"
#: URL arguments that name no object.
NOT_IDS = {"gate": "start", "code": "BP_SOFT_GATE", "filename": "css/app.css"}
#: Object-id URL arguments: the world key they are filled from ({"kind"} picks the chart entry's kind).
IDS = {"patient_id": "patient", "series_id": "series", "session_id": "session", "medication_id": "medication",
       "vital_sign_id": "reading", "alert_id": "alert", "event_id": "adverse_event", "entry_id": "{kind}",
       "item_id": "follow_up", "task_id": "task", "document_id": "document", "chair_id": "chair",
       "protocol_id": "protocol", "closure_id": "closure", "tablet_id": "tablet", "user_id": "target",
       "break_glass_id": "break_glass"}
#: Arguments that name a child of another argument's object: (the parent argument, the child's column).
CHILDREN = {"vital_sign_id": ("session_id", "session_id"), "alert_id": ("session_id", "session_id"),
            "event_id": ("session_id", "session_id"), "medication_id": ("patient_id", "patient_id"),
            "entry_id": ("patient_id", "patient_id")}
ENTRY_KINDS = ("weights", "medications", "contraindications")


def role_user(role):
    """A detached account of `role`, for asking a route's permission predicate."""
    return StaffUser(id=10**9, role=role, is_active_account=True)


def request_data(endpoint, world):
    """The form tests/test_permissions.py REQUESTS posts to `endpoint` (data an allowed user gets accepted),
    with patient A's ids."""
    ids = {**world["ids"]["A"], **world["common"]}
    data = REQUESTS.get(endpoint, (None, None, {}))[2] or {}
    return {key.format(**ids): str(value).format(**ids) for key, value in data.items()}


def canary_strings(*people):
    """Every canary of `people` (default: all) as a page could spell it (names whole and in part, MRN, birth
    date in several formats, the note phrase)."""
    found = []
    for person in (CANARIES[key] for key in people or CANARIES):
        born = person["date_of_birth"]
        found += [person["legal_name"], *person["legal_name"].split()[1:], person["mrn"], person["phrase"],
                  born.isoformat(), born.strftime("%d %b %Y"), born.strftime("%m/%d/%Y"),
                  f"{born:%b} {born.day}, {born.year}"]
    return found


def leaked(body, *people):
    return [canary for canary in canary_strings(*people) if canary in body]


def _patient(key, clock):
    person = CANARIES[key]
    patient = create_patient(now=clock(), legal_name=person["legal_name"], mrn=person["mrn"],
                             date_of_birth=person["date_of_birth"], allergies=f"Latex ({person['phrase']})")
    patients.record_consent(db.session.get(Patient, patient.id), consent_on=TODAY, form_version="v1",
                            actor=FACTORY_ACTOR, now=clock())
    db.session.commit()
    return patient.id


def _cleared_session(patient_id, clock, physician_id, at):
    series = order_series(patient_id=patient_id, now=clock(), start_on=TODAY, preferred_time=at,
                          ordered_by_id=physician_id)
    visit = series.sessions[0]
    for status in ("checked_in", "checklist"):
        change_status(visit, status, reason="", actor=FACTORY_ACTOR, now=clock())
    checklist.save_answers(visit, clear_answers(clock()), expected_version=None, actor=FACTORY_ACTOR, now=clock())
    change_status(visit, "cleared", reason="", actor=FACTORY_ACTOR, now=clock(), gate_passed=True)
    db.session.commit()
    return series.id, visit.id


def _chart_entries(patient_id, clock):
    patient = db.session.get(Patient, patient_id)
    medication = patients.add_medication(patient, name="Lamotrigine", med_class="lamotrigine",
                                         started_on=date(2025, 1, 1), stopped_on=None, actor=FACTORY_ACTOR,
                                         now=clock())
    contraindication = patients.add_contraindication(patient, kind="cardiac_disease", detail="Stent 2019",
                                                     noted_on=date(2026, 11, 1), actor=FACTORY_ACTOR, now=clock())
    db.session.commit()
    return {"medication": medication.id, "medications": medication.id, "contraindications": contraindication.id}


def _one(model, **where):
    return db.session.scalar(select(model.id).where(*(getattr(model, k) == v for k, v in where.items()))
                             .order_by(model.id))


def build(app):
    """The world (see the module docstring); returns its ids, by patient and in common."""
    clock = app.config["CLOCK"]
    with app.app_context():
        chairs = create_chairs(2)
        staff = {name: create_user(role=role, username=name, password=PASSWORD, now=clock())
                 for name, role in STAFF.items()}
        ids = {key: {"patient": _patient(key, clock)} for key in CANARIES}
        for key, at in (("A", "11:00"), ("B", "13:00")):
            ids[key]["series"], ids[key]["session"] = _cleared_session(ids[key]["patient"], clock,
                                                                       staff["physician"].id, at)
            ids[key].update(_chart_entries(ids[key]["patient"], clock))
        tablet = tablets.enrol_tablet("Chair 1 tablet", actor=replace(FACTORY_ACTOR, user_id=staff["admin"].id),
                                      now=clock())[0]
        closure = closures.add_closure(closed_on=date(2026, 12, 25), label="Christmas Day", actor=FACTORY_ACTOR,
                                       now=clock())[0]
        glass = BreakGlassEvent(patient_id=ids["B"]["patient"], user_id=staff["nurse2"].id, reason="emergency",
                                detail="Collapsed in the waiting room", started_at=clock(),
                                expires_at=clock() - timedelta(minutes=1))  # an admin's review; long closed
        db.session.add(glass)
        db.session.commit()
        common = {"chair": chairs[0], "tablet": tablet.id, "closure": closure.id, "target": staff["target"].id,
                  "break_glass": glass.id,
                  "protocol": db.session.scalar(select(Protocol.id).where(Protocol.code == "iv-induction",
                                                                         Protocol.is_current))}
    nurse = app.test_client()
    sign_in(nurse, "nurse", PASSWORD)
    for key in CANARIES:
        session_id, patient_id, phrase = ids[key]["session"], ids[key]["patient"], CANARIES[key]["phrase"]
        assert start(nurse, session_id).status_code == 302
        assert nurse.submit(f"/patients/{patient_id}/weights", {"kg": "72.5", "measured_on": "2026-11-20"}
                            ).status_code == 302
        assert nurse.submit(f"/sessions/{session_id}/note", {"version": "0", "mindset": f"Calm; {phrase}."}
                            ).status_code == 302
    clock.advance(minutes=12)
    for key in CANARIES:
        session_id, phrase = ids[key]["session"], CANARIES[key]["phrase"]
        assert vitals(nurse, session_id, "10:12", 185, 112).status_code == 302
        assert nurse.submit(f"/sessions/{session_id}/note/adverse-events", fields(
            "ae", kind="nausea", onset_time="10:05", severity="mild", intervention=f"Ondansetron; {phrase}",
            drug_given="", outcome="resolved", alert_id="")).status_code == 302
    with app.app_context():
        for key in CANARIES:
            session_id, patient_id = ids[key]["session"], ids[key]["patient"]
            ids[key].update(reading=_one(VitalSign, session_id=session_id),
                            alert=_one(InChairAlert, session_id=session_id),
                            adverse_event=_one(AdverseEvent, session_id=session_id),
                            weights=_one(PatientWeight, patient_id=patient_id, recorded_by_id=staff["nurse"].id))
        a = ids["A"]
        now = clock()
        task = PhysicianTask(session_id=a["session"], patient_id=a["patient"], code="PHQ9_ITEM9_POSITIVE",
                             kind="same_day_physician_review", message="PHQ-9 item 9 answered above 0.",
                             created_at=now, due_on=TODAY)
        follow_up = db.session.scalar(select(FollowUp).where(FollowUp.patient_id == a["patient"],
                                                             FollowUp.status == "open").order_by(FollowUp.id))
        if follow_up is None:
            follow_up = FollowUp(key=f"checkin_call:{a['session']}", kind="checkin_call", patient_id=a["patient"],
                                 session_id=a["session"], for_role="coordinator", due_at=now, created_at=now,
                                 updated_at=now)
            db.session.add(follow_up)
        content = b"%PDF-1.4\n% a stored report's bytes\n"
        document = ReportDocument(document_id=DOCUMENT_ID, kind="session", patient_id=a["patient"],
                                  session_id=a["session"], sha256=hashlib.sha256(content).hexdigest(),
                                  content=content, created_at=now)
        db.session.add_all([task, document])
        feed_token = feeds.issue_token(db.session.get(StaffUser, staff["coordinator"].id), actor=FACTORY_ACTOR,
                                       now=now)
        db.session.commit()
        a.update(task=task.id, follow_up=follow_up.id, document=DOCUMENT_ID)
        assert all(value is not None for person in ids.values() for value in person.values()), ids
    return {"ids": ids, "common": common, "staff": {name: user.id for name, user in staff.items()},
            "feed_token": feed_token, "now": clock()}


def fill(world, rule, owner="A", kind="weights", child_owner=None):
    """The URL values for `rule`: `owner`'s objects, a child argument from `child_owner`'s when given.
    Raises KeyError naming an argument the sweeps do not know how to fill."""
    values = {}
    for name in rule.arguments:
        if name in NOT_IDS:
            values[name] = NOT_IDS[name]
        elif name == "kind":
            values[name] = kind
        elif name in IDS:
            key = IDS[name].format(kind=kind)
            who = child_owner if child_owner and name in CHILDREN else owner
            values[name] = world["common"][key] if key in world["common"] else world["ids"][who][key]
        else:
            raise KeyError(f"{rule.endpoint} ({rule.rule}): no way to fill the URL argument {name!r}; "
                           f"add it to tests/access_world.py IDS or NOT_IDS")
    return values


def url(app, rule, values):
    methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
    return app.url_map.bind("localhost").build(rule.endpoint, values, method=methods[0])


def sign_in_all(app, world):
    """A signed-in client per account (by username), for the world's app."""
    clients = {}
    for name in STAFF:
        client = app.test_client()
        sign_in(client, name, PASSWORD)
        client.user_id = world["staff"][name]
        clients[name] = client
    return clients


def snapshot(app, *, audit_up_to=None, skip=()):
    """Every row of every table but `skip`, session last-seen times left out; the audit trail only up to
    `audit_up_to` (what a request may append is checked apart)."""
    state = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            if table.name in skip:
                continue
            columns = [c for c in table.c if c.name != "last_seen_at"]
            query = select(*columns).order_by(*table.primary_key.columns)
            if table.name == "audit_event":
                query = query.where(table.c.id <= (audit_up_to or 0))
            elif table.name == "audit_head":
                continue
            state[table.name] = [tuple(r) for r in db.session.execute(query).all()]
    return state


def audit_head(app):
    with app.app_context():
        return db.session.scalar(select(func.max(AuditEvent.id))) or 0


def audit_since(app, after):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id)).all()


#: This process's one canary world (built on first use, closed when pytest ends) and its counting statement.
_WORLD = {}


def counts(app, skip=()):
    """{table: row count} for every table but the audit trail's and `skip`, in one statement."""
    if "counts" not in _WORLD:
        names = [t.name for t in db.metadata.sorted_tables if t.name not in {"audit_event", "audit_head"}]
        _WORLD["counts"] = text("SELECT " + ", ".join(f'(SELECT count(*) FROM "{n}") AS "{n}"' for n in names))
    with app.app_context():
        found = db.session.execute(_WORLD["counts"]).one()._mapping
    return {name: count for name, count in found.items() if name not in skip}



@contextmanager
def canary_world(request, clock):
    """A fresh copy of the canary world on SQLite, served by its one app on `clock` set to the world's time.
    Built once per process for both sweeps (the SharedWorld of tests/shared_world.py)."""
    if "world" not in _WORLD:
        builder = worlds_by_backend(request.getfixturevalue("tmp_path_factory"), "canary", build, StaffClient,
                                    FrozenClock)
        _WORLD["world"] = next(builder)("sqlite", request.getfixturevalue("sqlite_template"))
        request.config.add_cleanup(lambda: next(builder, None))
    with _WORLD["world"].fresh_copy(clock) as shared:
        clock.now = shared.data["now"]
        yield shared

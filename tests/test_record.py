"""load_record(): the session as it was decided, which a later policy never rewrites (issue 8 B)."""
import json
from decimal import Decimal

import pytest

from opsmgr.audit.service import SYSTEM
from opsmgr.extensions import db
from opsmgr.policy.service import revise_policy
from opsmgr.sessions import record as canonical
from opsmgr.sessions.record import load_record, load_records
from tests.conftest import PASSWORD
from tests.factories import create_chairs
from tests.test_infusion import OVERRIDE_DOSE, done, fields, make_session, order, order_id, start, url


@pytest.fixture
def cleared(app, clock):
    """Today's first session of a new series, its checklist clear (BP 122/78, 72.4 kg)."""
    with app.app_context():
        create_chairs(2)
    return make_session(app, clock)


def summary(app, session_id):
    """What the record says was decided, as plain values."""
    with app.app_context():
        record = load_record(session_id)
        return {
            "checklist": [(f.code, f.severity.value, f.message) for f in record.checklist_findings],
            "checklist_policy": record.checklist.policy_version,
            "overrides": [(o.gate, o.code, o.finding["values"], o.reason) for o in record.overrides],
            "order": (record.dose_order.mg_per_kg, record.dose_order.reason, record.dose_order.policy_version),
            "dose": (record.dose.mg_per_kg, record.dose.dose_mg, record.dose.policy_version),
            "versions": record.policy_versions,
            "staff": sorted(record.staff.values()),
        }


def test_a_session_decided_under_policy_v1_reads_the_same_after_the_policy_moves_to_v2(app, cleared, login_as):
    nurse, physician = login_as("nurse"), login_as("physician")
    assert order(physician, cleared, dose="0.8").status_code == 302
    assert done(physician.submit(url(cleared, "overrides/start/DOSE_OUTSIDE_USUAL_RANGE"),
                                 fields(OVERRIDE_DOSE, dose_order=order_id(app, cleared), infusion_minutes=40,
                                        reason="Partial response at 0.5", password=PASSWORD)))
    assert done(start(nurse, cleared, dose_order=order_id(app, cleared)))
    before = summary(app, cleared)
    assert before["versions"] == (1,) and before["dose"] == (Decimal("0.8"), Decimal("57.9"), 1)
    assert [code for _, code, *_ in before["overrides"]] == ["DOSE_OUTSIDE_USUAL_RANGE"]

    with app.app_context():  # version 2 would decide this session differently: BP 122/78 above 120/75, 0.8 usual
        revise_policy({"bp_soft_systolic": 120, "bp_soft_diastolic": 75, "dose_mg_per_kg_high": 1.0},
                      based_on=1, note="Stricter BP review", actor=SYSTEM, now=app.config["CLOCK"]())
        db.session.commit()
    assert summary(app, cleared) == before


def test_the_start_records_the_ordered_dose_and_the_canonical_record_holds_the_order(app, cleared, login_as):
    physician = login_as("physician")
    assert order(physician, cleared, dose="0.6", reason="Nausea at 0.5; a little more").status_code == 302
    assert done(start(login_as("nurse"), cleared, dose_order=order_id(app, cleared)))
    with app.app_context():
        document = json.loads(canonical.aggregate_hash(cleared)[0])
    [ordered] = document["dose_orders"]
    assert (ordered["mg_per_kg"], ordered["reason"]) == ("0.6", "Nausea at 0.5; a little more")
    assert document["dose"]["dose_order_id"] == ordered["id"] and document["dose"]["mg_per_kg"] == "0.6"
    with app.app_context():  # the series summary's batch read gives the very same record
        one, many = load_record(cleared), load_records([cleared, cleared + 1000])
        assert list(many) == [cleared] and many[cleared] == one and one.staff and one.dose_orders
    # The note page shows the record the signature will cover, read through load_record().
    page = physician.get(f"/sessions/{cleared}/note").get_data(as_text=True)
    assert "The session as recorded" in page and "ordered for this session by" in page
    assert "0.6 mg/kg × 72.4 kg = 43.4 mg over 40 minutes" in page and "Nausea at 0.5; a little more" in page

"""Clinic set-up pages for admins: chairs, opening hours, settings and versioned protocols."""
import json
import re
from datetime import date, time
from decimal import Decimal

import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.schedule.models import Chair, ClinicDay, ClinicSetting
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession
from tests.factories import create_chairs, create_patient, order_series

#: A full, valid edit of the seeded IV induction protocol (version 1 values, name changed).
IV_EDIT = {
    "name": "IV ketamine induction (revised)", "planned_count": "6", "phases": "2x3", "max_span_days": "21",
    "max_gap_days": "7", "dose_mg_per_kg": "0.5", "min_infusion_minutes": "40", "chair_minutes": "120",
    "observation_minutes": "60", "review_week": "", "reevaluate_after_days": "", "notes": "Revised notes.",
}
ESKETAMINE_EDIT = {
    "name": "Esketamine induction", "planned_count": "12", "phases": "4x2, 4x1", "max_span_days": "",
    "max_gap_days": "7", "dose_mg": "84", "min_infusion_minutes": "0", "chair_minutes": "150",
    "observation_minutes": "120", "review_week": "4", "reevaluate_after_days": "", "notes": "",
}
#: One week of hours as the hours form posts it (Monday to Friday 08:00-18:00).
WEEK = {
    **{f"days-{d}-is_open": "y" for d in range(5)},
    **{f"days-{d}-opens_at": "08:00" for d in range(7)},
    **{f"days-{d}-closes_at": "18:00" for d in range(7)},
}


def protocol(app, code, version=None):
    with app.app_context():
        query = select(Protocol).where(Protocol.code == code)
        query = query.where(Protocol.version == version) if version else query.where(Protocol.is_current)
        return db.session.scalar(query)


def events(app, action):
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return [(event.username, json.loads(event.details)) for event in rows]


def chairs(app):
    with app.app_context():
        return {c.name: (c.position, c.is_active) for c in db.session.scalars(select(Chair).order_by(Chair.id))}


def make_chairs(app, count=2):
    with app.app_context():
        return create_chairs(count)


def html(response):
    return response.get_data(as_text=True)


# --- access -----------------------------------------------------------------------------------------

PAGES = [
    ("GET", "/admin/clinic/", None),
    ("POST", "/admin/clinic/chairs", {"name": "Chair 9"}),
    ("POST", "/admin/clinic/chairs/{chair}", {"name": "Renamed", "position": "1"}),
    ("GET", "/admin/clinic/hours", None),
    ("POST", "/admin/clinic/hours", WEEK),
    ("POST", "/admin/clinic/settings", {"turnover_minutes": "20"}),
    ("GET", "/admin/clinic/protocols/{protocol}", None),
    ("GET", "/admin/clinic/protocols/{protocol}/edit", None),
    ("POST", "/admin/clinic/protocols/{protocol}/edit", IV_EDIT),
]


def _request(client, method, url, data, app):
    chair_id = make_chairs(app, 1)[0] if "{chair}" in url else None
    url = url.format(chair=chair_id, protocol=protocol(app, "iv-induction").id)
    return client.submit(url, data) if method == "POST" else client.get(url)


def test_every_clinic_page_works_for_an_admin(app, login_as):
    admin = login_as("admin")
    for method, url, data in PAGES:
        response = _request(admin, method, url, data, app)
        assert response.status_code == (200 if method == "GET" else 302), (url, html(response))


@pytest.mark.parametrize("role", ["nurse", "coordinator", "physician"])
def test_other_roles_are_refused_and_change_nothing(app, login_as, role):
    client = login_as(role)
    for method, url, data in PAGES:
        response = _request(client, method, url, data, app)
        assert response.status_code == 403, url
        assert "Not allowed" in html(response)
    assert protocol(app, "iv-induction").version == 1
    assert "Chair 9" not in chairs(app) and "Renamed" not in chairs(app)
    with app.app_context():
        assert db.session.get(ClinicSetting, 1).turnover_minutes == 15
        denied = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "access.denied")).all()
    assert len(denied) == len(PAGES)


def test_signed_out_visitors_go_to_the_login_page(client):
    response = client.get("/admin/clinic/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_overview_shows_chairs_hours_settings_and_current_protocols(app, login_as):
    make_chairs(app, 2)
    page = html(login_as("admin").get("/admin/clinic/"))
    assert "Chair 1" in page and "Chair 2" in page
    assert "08:00–18:00" in page and "Saturday" in page and "Closed" in page
    assert 'name="turnover_minutes"' in page and 'value="15"' in page
    assert "Show patient names in staff calendar feeds" in page
    for code in ("iv-induction", "iv-booster", "esketamine-induction"):
        assert f"/admin/clinic/protocols/{protocol(app, code).id}" in page
    assert "2 weeks × 3 a week" in page and "0.5 mg/kg" in page and "56 mg" in page


# --- chairs -----------------------------------------------------------------------------------------


def test_admin_adds_a_chair_after_the_last_one_and_it_is_audited(app, login_as):
    make_chairs(app, 2)
    admin = login_as("admin")
    response = admin.submit("/admin/clinic/chairs", {"name": "  Window chair  "})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/clinic/#chairs")
    assert chairs(app)["Window chair"] == (3, True)
    assert events(app, "chair.created") == [(admin.user.username, {"name": "Window chair", "position": 3})]


@pytest.mark.parametrize(("name", "message"), [
    ("", "Give the chair a name."),
    ("x" * 61, "between 1 and 60 characters"),
    ("chair 1", "Another chair already has this name."),
])
def test_a_bad_chair_name_is_refused_next_to_the_field_keeping_the_input(app, login_as, name, message):
    make_chairs(app, 1)
    response = login_as("admin").submit("/admin/clinic/chairs", {"name": name, "position": "4"})
    page = html(response)
    assert response.status_code == 400
    assert 'id="name-error"' in page and message in page
    assert re.search(f'id="name" [^>]*value="{name}"', page) and re.search('id="position" [^>]*value="4"', page)
    assert len(chairs(app)) == 1 and events(app, "chair.created") == []


def test_a_name_taken_at_the_same_moment_is_caught_by_the_unique_index(app, login_as, monkeypatch):
    from opsmgr.clinic import service

    make_chairs(app, 1)
    monkeypatch.setattr(service, "_name_taken", lambda name, exclude_id=None: False)  # the other admin's race
    response = login_as("admin").submit("/admin/clinic/chairs", {"name": "Chair 1"})
    assert response.status_code == 400 and "Another chair already has this name." in html(response)
    assert len(chairs(app)) == 1


def test_admin_renames_moves_and_deactivates_a_chair_with_old_and_new_values_audited(app, login_as):
    chair_id = make_chairs(app, 2)[0]
    admin = login_as("admin")
    response = admin.submit(f"/admin/clinic/chairs/{chair_id}", {"name": "Quiet corner", "position": "5"})
    assert response.status_code == 302
    assert chairs(app)["Quiet corner"] == (5, False)
    assert events(app, "chair.updated") == [(admin.user.username, {
        "name": ["Chair 1", "Quiet corner"], "position": [1, 5], "is_active": [True, False]})]
    admin.submit(f"/admin/clinic/chairs/{chair_id}", {"name": "Quiet corner", "position": "5", "is_active": "y"})
    assert chairs(app)["Quiet corner"] == (5, True)


def test_renaming_to_another_chairs_name_is_refused(app, login_as):
    first, _second = make_chairs(app, 2)
    response = login_as("admin").submit(f"/admin/clinic/chairs/{first}",
                                        {"name": "CHAIR 2", "position": "1", "is_active": "y"})
    page = html(response)
    assert response.status_code == 400
    assert f'id="chair-{first}-name-error"' in page and "Another chair already has this name." in page
    assert 'value="CHAIR 2"' in page
    assert chairs(app) == {"Chair 1": (1, True), "Chair 2": (2, True)}


def test_a_chair_with_future_sessions_cannot_be_deactivated(app, login_as, clock):
    with app.app_context():
        chair_ids = create_chairs(1)
        patient = create_patient(now=clock())
        order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))
    response = login_as("admin").submit(f"/admin/clinic/chairs/{chair_ids[0]}", {"name": "Chair 1", "position": "1"})
    page = html(response)
    assert response.status_code == 400
    assert f'id="chair-{chair_ids[0]}-is_active-error"' in page
    assert "Chair 1 cannot be deactivated: 6 session(s) are still booked on it, the next on Mon 30 Nov 2026 at " \
           "09:00. Move or cancel them first." in page
    assert chairs(app)["Chair 1"] == (1, True) and events(app, "chair.updated") == []


def test_a_chair_whose_sessions_are_over_or_cancelled_can_be_deactivated(app, login_as, clock):
    with app.app_context():
        chair_ids = create_chairs(1)
        patient = create_patient(now=clock())
        series = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))
        for session in series.sessions:
            session.status = "cancelled"
        db.session.commit()
    response = login_as("admin").submit(f"/admin/clinic/chairs/{chair_ids[0]}", {"name": "Chair 1", "position": "1"})
    assert response.status_code == 302
    assert chairs(app)["Chair 1"] == (1, False)


def test_updating_a_missing_chair_is_404(login_as):
    assert login_as("admin").submit("/admin/clinic/chairs/999999", {"name": "X"}).status_code == 404


# --- opening hours and settings ---------------------------------------------------------------------


def test_hours_page_shows_each_weekday_with_its_own_labels(login_as):
    page = html(login_as("admin").get("/admin/clinic/hours"))
    assert "Saturday opens" in page and "Monday closes" in page
    assert 'id="days-0-opens_at"' in page and 'value="08:00"' in page


def test_admin_opens_saturday_morning_and_the_change_is_audited(app, login_as):
    admin = login_as("admin")
    data = {**WEEK, "days-5-is_open": "y", "days-5-opens_at": "09:00", "days-5-closes_at": "13:00"}
    response = admin.submit("/admin/clinic/hours", data)
    assert response.status_code == 302
    with app.app_context():
        saturday = db.session.get(ClinicDay, 5)
        assert (saturday.is_open, saturday.opens_at, saturday.closes_at) == (True, time(9), time(13))
    assert events(app, "clinic.hours_changed") == [(admin.user.username, {
        "saturday_is_open": [False, True], "saturday_opens_at": ["08:00", "09:00"],
        "saturday_closes_at": ["18:00", "13:00"]})]


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"days-2-opens_at": "18:00", "days-2-closes_at": "09:00"}, "days-2-closes_at",
     "Closing time must be after opening time."),
    ({"days-2-opens_at": "12:00", "days-2-closes_at": "12:00"}, "days-2-closes_at",
     "Closing time must be after opening time."),
    ({"days-6-opens_at": "20:00", "days-6-closes_at": "07:00"}, "days-6-closes_at",
     "Closing time must be after opening time."),
    ({"days-1-opens_at": "25:61"}, "days-1-opens_at", "Not a valid time value."),
    ({"days-1-closes_at": ""}, "days-1-closes_at", "Enter a time as HH:MM."),
])
def test_bad_hours_are_refused_next_to_the_field_keeping_the_input(app, login_as, change, field, message):
    response = login_as("admin").submit("/admin/clinic/hours", {**WEEK, **change})
    page = html(response)
    assert response.status_code == 200
    assert f'id="{field}-error"' in page and message in page
    for value in change.values():
        assert f'value="{value}"' in page
    with app.app_context():
        assert all((d.opens_at, d.closes_at) == (time(8), time(18)) for d in db.session.scalars(select(ClinicDay)))
    assert events(app, "clinic.hours_changed") == []


def test_closing_a_day_with_booked_sessions_warns_without_moving_them(app, login_as, clock):
    with app.app_context():
        create_chairs(1)
        patient = create_patient(now=clock())
        order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))  # Mon, Wed, Fri, ...
    data = {**WEEK}
    del data["days-0-is_open"]
    response = login_as("admin").submit("/admin/clinic/hours", data, follow_redirects=True)
    assert "2 booked session(s) ahead now fall outside the opening hours" in html(response)
    with app.app_context():
        assert all(s.status == "scheduled" for s in db.session.scalars(select(InfusionSession)))


def test_admin_changes_turnover_and_calendar_names_with_old_and_new_values_audited(app, login_as):
    admin = login_as("admin")
    response = admin.submit("/admin/clinic/settings", {"turnover_minutes": "20", "ical_patient_names": "y"})
    assert response.status_code == 302
    with app.app_context():
        setting = db.session.get(ClinicSetting, 1)
        assert (setting.turnover_minutes, setting.ical_patient_names) == (20, True)
    assert events(app, "clinic.settings_changed") == [(admin.user.username, {
        "turnover_minutes": [15, 20], "ical_patient_names": [False, True]})]


@pytest.mark.parametrize(("value", "message"), [
    ("121", "Number must be between 0 and 120."), ("-1", "Number must be between 0 and 120."),
    ("ten", "Not a valid integer value."), ("", "Enter the minutes between two sessions on a chair."),
])
def test_bad_turnover_is_refused_next_to_the_field(app, login_as, value, message):
    response = login_as("admin").submit("/admin/clinic/settings", {"turnover_minutes": value})
    page = html(response)
    assert response.status_code == 400
    assert 'id="turnover_minutes-error"' in page and message in page and f'value="{value}"' in page
    with app.app_context():
        assert db.session.get(ClinicSetting, 1).turnover_minutes == 15


# --- protocols --------------------------------------------------------------------------------------


def test_protocol_detail_shows_every_field_in_words(app, login_as):
    admin = login_as("admin")
    iv = html(admin.get(f"/admin/clinic/protocols/{protocol(app, 'iv-induction').id}"))
    for text in ("IV ketamine induction", "iv-induction", "IV infusion", "2 weeks × 3 a week", "21 days",
                 "7 days", "0.5 mg/kg", "40 minutes", "60 minutes", "120 minutes", "None scheduled",
                 "6 infusions, 2-3 a week", "Version history", "Installed default"):
        assert text in iv, text
    esketamine = html(admin.get(f"/admin/clinic/protocols/{protocol(app, 'esketamine-induction').id}"))
    assert "4 weeks × 2 a week, then 4 weeks × 1 a week" in esketamine
    assert "56 mg" in esketamine and "In week 4" in esketamine and "Esketamine nasal spray" in esketamine
    booster = html(admin.get(f"/admin/clinic/protocols/{protocol(app, 'iv-booster').id}"))
    assert "35 days after the last session" in booster


def test_protocol_detail_of_a_missing_protocol_is_404(login_as):
    assert login_as("admin").get("/admin/clinic/protocols/999999").status_code == 404


def test_edit_form_is_filled_with_the_current_version(app, login_as):
    page = html(login_as("admin").get(f"/admin/clinic/protocols/{protocol(app, 'iv-induction').id}/edit"))
    assert 'value="2x3"' in page and 'value="0.500"' in page and 'value="IV ketamine induction"' in page
    assert 'name="dose_mg"' not in page
    esketamine = html(login_as("admin").get(
        f"/admin/clinic/protocols/{protocol(app, 'esketamine-induction').id}/edit"))
    assert 'value="4x2, 4x1"' in esketamine and 'name="dose_mg_per_kg"' not in esketamine
    assert '<option selected value="56">' in esketamine


def test_saving_a_protocol_makes_version_2_current_and_existing_series_keep_version_1(app, login_as, clock):
    with app.app_context():
        create_chairs(2)
        patient = create_patient(now=clock())
        series_id = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30)).id
    first = protocol(app, "iv-induction")
    admin = login_as("admin")
    edit = {**IV_EDIT, "planned_count": "8", "phases": "2x3, 2x1", "dose_mg_per_kg": "0.75"}
    response = admin.submit(f"/admin/clinic/protocols/{first.id}/edit", edit)
    assert response.status_code == 302
    second = protocol(app, "iv-induction")
    assert response.headers["Location"].endswith(f"/admin/clinic/protocols/{second.id}")
    assert (second.version, second.is_current, second.planned_count) == (2, True, 8)
    assert second.phases == [{"weeks": 2, "per_week": 3}, {"weeks": 2, "per_week": 1}]
    assert second.dose_mg_per_kg == Decimal("0.750") and second.route == "iv"
    assert second.created_by_id == admin.user.id
    old = protocol(app, "iv-induction", version=1)
    assert (old.id, old.is_current, old.planned_count, old.dose_mg_per_kg) == (first.id, False, 6, Decimal("0.5"))
    with app.app_context():
        assert db.session.get(InfusionSeries, series_id).protocol_id == first.id
    [(username, details)] = events(app, "protocol.revised")
    assert username == admin.user.username
    assert details == {
        "code": "iv-induction", "version": [1, 2],
        "name": ["IV ketamine induction", "IV ketamine induction (revised)"], "planned_count": [6, 8],
        "phases": ["2x3", "2x3, 2x1"], "dose_mg_per_kg": ["0.5", "0.75"], "notes": "changed"}
    page = html(admin.get(f"/admin/clinic/protocols/{second.id}"))
    assert "2 weeks × 3 a week, then 2 weeks × 1 a week" in page
    assert f'href="/admin/clinic/protocols/{first.id}">v1</a>' in page
    old_page = html(admin.get(f"/admin/clinic/protocols/{first.id}"))
    assert "This is an earlier version" in old_page and "/edit" not in old_page.split("<main")[1]


def test_esketamine_edit_keeps_a_fixed_dose(app, login_as):
    first = protocol(app, "esketamine-induction")
    response = login_as("admin").submit(f"/admin/clinic/protocols/{first.id}/edit", ESKETAMINE_EDIT)
    assert response.status_code == 302
    second = protocol(app, "esketamine-induction")
    assert (second.version, second.dose_mg, second.dose_mg_per_kg, second.route) == (2, 84, None, "esketamine")


def test_an_unchanged_protocol_is_not_saved_again(app, login_as):
    first = protocol(app, "iv-induction")
    data = {**IV_EDIT, "name": first.name, "notes": first.notes}
    response = login_as("admin").submit(f"/admin/clinic/protocols/{first.id}/edit", data, follow_redirects=True)
    assert "Nothing changed" in html(response)
    assert protocol(app, "iv-induction").version == 1 and events(app, "protocol.revised") == []


def test_opening_an_old_version_to_edit_opens_the_current_one(app, login_as):
    """(Saving a form opened on an old version merges with the current one: tests/test_merge.py.)"""
    first = protocol(app, "iv-induction")
    admin = login_as("admin")
    admin.submit(f"/admin/clinic/protocols/{first.id}/edit", IV_EDIT)
    redirect = admin.get(f"/admin/clinic/protocols/{first.id}/edit")
    assert redirect.status_code == 302
    assert redirect.headers["Location"].endswith(f"/admin/clinic/protocols/{protocol(app, 'iv-induction').id}/edit")


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"name": ""}, "name", "Give the protocol a name."),
    ({"planned_count": "0"}, "planned_count", "Number must be between 1 and 52."),
    ({"planned_count": "53"}, "planned_count", "Number must be between 1 and 52."),
    ({"planned_count": "six"}, "planned_count", "Not a valid integer value."),
    ({"phases": "2 weeks"}, "phases", "is not weeks x sessions a week"),
    ({"phases": "2x3,"}, "phases", "is not weeks x sessions a week"),
    ({"phases": "0x3"}, "phases", "Each phase lasts 1 to 52 weeks."),
    ({"phases": "2x8"}, "phases", "Each phase has 1 to 7 sessions a week."),
    ({"phases": "2x3x1"}, "phases", "is not weeks x sessions a week"),
    ({"phases": "2x0"}, "phases", "Each phase has 1 to 7 sessions a week."),
    ({"phases": ", ".join(["1x1"] * 7)}, "phases", "Use at most 6 phases."),
    ({"max_gap_days": "0"}, "max_gap_days", "Number must be between 1 and 90."),
    ({"max_span_days": "abc"}, "max_span_days", "Not a valid integer value."),
    ({"dose_mg_per_kg": "0.04"}, "dose_mg_per_kg", "between 0.05 and 2.0 mg/kg"),
    ({"dose_mg_per_kg": "2.01"}, "dose_mg_per_kg", "between 0.05 and 2.0 mg/kg"),
    ({"dose_mg_per_kg": "NaN"}, "dose_mg_per_kg", "Enter a number, e.g. 0.5."),
    ({"dose_mg_per_kg": "sNaN"}, "dose_mg_per_kg", "Enter a number, e.g. 0.5."),
    ({"dose_mg_per_kg": "Infinity"}, "dose_mg_per_kg", "Enter a number, e.g. 0.5."),
    ({"dose_mg_per_kg": "half"}, "dose_mg_per_kg", "Not a valid decimal value."),
    ({"dose_mg_per_kg": ""}, "dose_mg_per_kg", "Enter the dose in mg/kg."),
    ({"chair_minutes": "14"}, "chair_minutes", "Number must be between 15 and 480."),
    ({"chair_minutes": "481"}, "chair_minutes", "Number must be between 15 and 480."),
    ({"chair_minutes": "90"}, "chair_minutes", "minimum infusion plus observation (100 minutes)"),
    ({"min_infusion_minutes": ""}, "min_infusion_minutes", "Enter the minutes."),
    ({"review_week": "53"}, "review_week", "Number must be between 1 and 52."),
    ({"notes": "x" * 2001}, "notes", "cannot be longer than 2000 characters"),
])
def test_bad_protocol_input_is_refused_next_to_the_field_keeping_the_input(app, login_as, change, field, message):
    first = protocol(app, "iv-induction")
    response = login_as("admin").submit(f"/admin/clinic/protocols/{first.id}/edit", {**IV_EDIT, **change})
    page = html(response)
    assert response.status_code == 200
    assert f'id="{field}-error"' in page and message in page
    assert 'value="IV ketamine induction (revised)"' in page or field == "name"
    assert protocol(app, "iv-induction").version == 1 and events(app, "protocol.revised") == []


@pytest.mark.parametrize("dose", ["99", "abc", ""])
def test_esketamine_dose_must_be_one_of_the_device_doses(app, login_as, dose):
    first = protocol(app, "esketamine-induction")
    response = login_as("admin").submit(f"/admin/clinic/protocols/{first.id}/edit",
                                        {**ESKETAMINE_EDIT, "dose_mg": dose})
    page = html(response)
    assert response.status_code == 200 and 'id="dose_mg-error"' in page
    assert protocol(app, "esketamine-induction").version == 1


def test_an_iv_edit_ignores_a_posted_fixed_dose(app, login_as):
    first = protocol(app, "iv-induction")
    login_as("admin").submit(f"/admin/clinic/protocols/{first.id}/edit", {**IV_EDIT, "dose_mg": "84"})
    assert protocol(app, "iv-induction").dose_mg is None

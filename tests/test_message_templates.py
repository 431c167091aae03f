"""Reminder texts an admin edits: checked at save, previewed on a demo patient, sandboxed, merged."""
import re
from html import unescape

import pytest
from jinja2.exceptions import SecurityError
from sqlalchemy import func, insert, select

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.messaging import templates
from opsmgr.messaging.models import MessageTemplate
from opsmgr.rules.reminders import DEFAULT_EMAIL_BODY, DEFAULT_EMAIL_SUBJECT, DEFAULT_SMS
from tests.sql import count_statements
from tests.test_merge import choose, form_values, last_event

URL = "/admin/messages"
FORM = f'action="{URL}"'
DEFAULTS = {"reminder_sms": DEFAULT_SMS, "reminder_email_subject": DEFAULT_EMAIL_SUBJECT,
            "reminder_email_body": DEFAULT_EMAIL_BODY.strip()}
MINE = "Hi {{ first_name }}, see you {{ session_day }} at {{ session_time }}. Reply YES to confirm, STOP to stop."
#: The demo patient's session: tomorrow (the clock says Thu 26 Nov) at 10:00, IV fasting times.
DEMO = "Hi Sam, see you Fri 27 Nov at 10:00. Reply YES to confirm, STOP to stop."


def post(client, action="save", **texts):
    return client.submit(URL, {**DEFAULTS, **texts, "action": action})


def error_at(html, name):
    match = re.search(rf'<div id="{name}-error"[^>]*>(.*?)</div>', html, re.S)
    return unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip() if match else None


def field_text(html, name):
    return unescape(form_values(html, FORM)[name])


def stored(app):
    with app.app_context():
        return dict(db.session.execute(select(MessageTemplate.name, MessageTemplate.body)).all())


def saves(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == templates.AUDIT_ACTION))


def rendered_sms(app):
    with app.app_context():
        return templates.render("reminder_sms", templates.sample_values())


def test_unknown_placeholder_and_syntax_error_are_refused_at_save_next_to_their_field(app, login_as):
    typed = {"reminder_sms": "Your {{ diagnosis }} visit is {{ session_day }}.",
             "reminder_email_body": "Hello,\n\nSee you {{ session_day }}\nat {{ session_time }."}
    response = post(login_as("admin"), **typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'data-testid="not-saved"' in html
    assert error_at(html, "reminder_sms") == ("Error: Unknown placeholder {{ diagnosis }}: use only the "
                                              "placeholders listed on this page.")
    assert error_at(html, "reminder_email_body").startswith("Error: Line 4: unexpected '}'.")
    assert error_at(html, "reminder_email_subject") is None
    assert field_text(html, "reminder_sms") == typed["reminder_sms"], "nothing typed is lost"
    assert field_text(html, "reminder_email_body") == typed["reminder_email_body"]
    assert (stored(app), saves(app)) == ({}, 0)


def test_a_sandbox_escape_is_refused_at_save_and_harmless_if_stored_anyway(app, login_as, clock):
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    html = post(login_as("admin"), reminder_sms=escape).get_data(as_text=True)
    assert "Line 1: use each placeholder whole" in error_at(html, "reminder_sms") and stored(app) == {}
    with app.app_context():  # a row written around the page: the scheduler sends the default, never the escape
        db.session.execute(insert(MessageTemplate).values(name="reminder_sms", body=escape, updated_at=clock(),
                                                          version=1))
        db.session.commit()
        text = templates.render("reminder_sms", templates.sample_values())
        assert text.startswith("Infusion clinic: your appointment is Fri 27 Nov at 10:00.")
        assert "class" not in text
        with pytest.raises(SecurityError, match="unsafe"):
            templates.SANDBOX.from_string(escape).render()


def test_preview_shows_the_demo_patient_and_saves_nothing(app, login_as):
    long_sms = MINE + " {{ clinic_name }}" * 30
    admin = login_as("admin")
    response = post(admin, "preview", reminder_sms=MINE)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert unescape(re.search(r'data-testid="preview-sms">(.*?)</div>', html, re.S).group(1)) == DEMO
    assert "Your appointment on Fri 27 Nov at 10:00" in html
    assert "Please do not eat after 04:00." in html and "You may drink clear liquids until 08:00" in html
    assert field_text(html, "reminder_sms") == MINE and 'data-testid="sms-long"' not in html
    assert 'data-testid="sms-long"' in post(admin, "preview", reminder_sms=long_sms).get_data(as_text=True)
    assert (stored(app), saves(app)) == ({}, 0)


def test_saved_text_is_rendered_audited_and_restored_to_the_default(app, login_as):
    admin = login_as("admin")
    assert post(admin, reminder_sms=MINE).status_code == 302
    assert stored(app) == {"reminder_sms": MINE} and rendered_sms(app) == DEMO
    assert last_event(app, templates.AUDIT_ACTION) == {"reminder_sms": 1}
    html = admin.get(URL).get_data(as_text=True)
    assert "the clinic's wording, version 1" in html and field_text(html, "reminder_sms") == MINE

    restored = admin.submit(URL, {**form_values(html, FORM), "action": "restore:reminder_sms"})
    html = restored.get_data(as_text=True)
    assert restored.status_code == 200 and 'data-testid="restored"' in html
    assert field_text(html, "reminder_sms") == DEFAULT_SMS and stored(app) == {"reminder_sms": MINE}, "not yet saved"
    assert admin.submit(URL, {**form_values(html, FORM), "action": "save"}).status_code == 302
    assert stored(app) == {} and rendered_sms(app).startswith("Infusion clinic: your appointment is Fri 27 Nov")
    assert last_event(app, templates.AUDIT_ACTION) == {"reminder_sms": "default"}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", ["nurse", "coordinator", "physician"])
def test_only_admins_reach_the_page(backend, app, login_as, role):
    client = login_as(role)
    assert client.get(URL).status_code == 403
    assert post(client, reminder_sms=MINE).status_code == 403 and stored(app) == {}


@pytest.mark.parametrize(("theirs", "mine", "status", "result"), [
    ({"reminder_email_subject": "Visit {{ session_day }}"}, {"reminder_sms": MINE}, 302,
     {"reminder_email_subject": "Visit {{ session_day }}", "reminder_sms": MINE}),           # one each: both kept
    ({"reminder_sms": "Theirs {{ session_day }}"}, {"reminder_sms": MINE}, 409,
     {"reminder_sms": "Theirs {{ session_day }}"}),                                           # both: a choice
])
def test_concurrent_edits_merge_field_by_field(app, login_as, theirs, mine, status, result):
    first, second = login_as("admin"), login_as("admin")
    a, b = (form_values(c.get(URL).get_data(as_text=True), FORM) for c in (first, second))
    assert first.submit(URL, {**a, **theirs, "action": "save"}).status_code == 302
    response = second.submit(URL, {**b, **mine, "action": "save"})
    assert response.status_code == status and stored(app) == result
    if status == 302:
        assert "Also kept: Email subject" in second.get(URL).get_data(as_text=True)
        return
    html = response.get_data(as_text=True)
    assert 'id="choice-reminder_sms"' in html and field_text(html, "reminder_sms") == MINE
    again = second.submit(URL, {**choose(html, FORM, reminder_sms="mine"), "action": "save"})
    assert again.status_code == 302 and stored(app) == {"reminder_sms": MINE}
    assert last_event(app, templates.AUDIT_ACTION) == {"reminder_sms": 2, "chosen_mine": ["reminder_sms"]}


def test_the_page_runs_the_same_statements_with_or_without_saved_texts(app, login_as):
    admin = login_as("admin")
    admin.get(URL)
    with count_statements(app) as defaults:
        assert admin.get(URL).status_code == 200
    assert post(admin, reminder_sms=MINE, reminder_email_subject="Visit {{ session_day }}",
                reminder_email_body="See you {{ session_time }}.").status_code == 302
    admin.get(URL)  # shows (and clears) the "saved" message, read from the server (core/flashes.py)
    with count_statements(app) as saved:
        html = admin.get(URL).get_data(as_text=True)
    assert saved["n"] == defaults["n"] and html.count("the clinic's wording, version 1") == 3

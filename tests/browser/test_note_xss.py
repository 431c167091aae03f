"""XSS payloads stored in every text field of a note, its adverse events and its addenda render inert in
Chromium: no dialog fires, no element or handler is injected, and each payload shows as literal text.

The app's Content-Security-Policy (script-src 'self') would block most inline scripts even if the
escaping failed, so these contexts bypass it: what is tested here is the escaping itself. The first
check proves the harness would see a hole.
"""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from opsmgr.core.forms import clean_text
from opsmgr.extensions import db
from opsmgr.notes.forms import NoteForm
from opsmgr.notes.models import SessionNote
from tests.browser.conftest import DEMO_PASSWORD
from tests.browser.notes_fixtures import csrf_token, new_person, serve_with_app, sign_in
from tests.xss_payloads import PAYLOADS

pytestmark = pytest.mark.browser

assert len(PAYLOADS) >= 50
ALL = "\n".join(PAYLOADS)
#: A payload as the forms store it (core.forms.clean_text: no control or bidirectional-override characters).
stored = clean_text
NUMBER_FIELDS = {"dissociation_clinician": "5", "dissociation_patient": "6", "eye_mask": "yes"}
CHECK_DOM = """() => {
  const bad = [];
  const schemes = /^(javascript|data|vbscript):/i;
  const dangerous = new Set(["iframe", "frame", "frameset", "object", "embed", "applet", "math", "base", "marquee",
                             "video", "audio", "source", "style", "noscript", "template", "portal"]);
  for (const el of document.querySelectorAll("*")) {
    const tag = el.localName;
    const html = el.outerHTML.slice(0, 100);
    if (tag === "script" && !new URL(el.getAttribute("src") || "x:", location.href).pathname.startsWith("/static/")) {
      bad.push("script: " + html);
    }
    if (tag === "script" && new URL(el.src, location.href).origin !== location.origin) { bad.push("script: " + html); }
    if (dangerous.has(tag) || tag === "svg" || tag === "img") { bad.push(tag + ": " + html); }
    if ((tag === "meta" || tag === "link") && el.closest("body")) { bad.push(tag + ": " + html); }
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.replace(/[\\u0000-\\u0020]/g, "");
      if (name.startsWith("on") || name === "srcdoc" || name === "formaction") { bad.push(name + ": " + html); }
      const url = ["href", "src", "action", "data", "xlink:href", "background", "poster"].includes(name);
      if (url && schemes.test(value)) { bad.push(name + ": " + html); }
      if (name === "style" && /url\\(|expression/i.test(value)) { bad.push("style: " + html); }
    }
  }
  for (const form of document.forms) {
    if (new URL(form.action, location.href).origin !== location.origin) { bad.push("form: " + form.outerHTML); }
  }
  return bad;
}"""

#: Resolves after the page has rendered twice more (then a task): the rendering steps that run
#: autofocus and the tasks queued during them are done.
RENDERED_TWICE = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done))))"


def text_fields():
    """Every text field of the note form, with its maximum length."""
    from wtforms import StringField, TextAreaField

    fields = {}
    for name, unbound in vars(NoteForm).items():
        if getattr(unbound, "field_class", None) in (StringField, TextAreaField):
            fields[name] = unbound.kwargs["render_kw"]["maxlength"]
    return fields


NOTE_TEXT_FIELDS = text_fields()


def chunks(items, limit):
    """The payloads in groups, each group joined with newlines no longer than `limit`."""
    groups, current = [], []
    for item in items:
        assert len(item) <= limit, item
        if current and len("\n".join([*current, item])) > limit:
            groups.append(current)
            current = []
        current.append(item)
    return groups + [current]


BATCHES = chunks(PAYLOADS, 300)  # one session per batch: the 300-character fields take a batch each


def normal(text):
    return " ".join(stored(text).split())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve_with_app(tmp_path_factory)


class Watched:
    """A signed-in page that records every dialog and, for speed, posts forms with its CSRF token."""

    def __init__(self, browser, server, username):
        self.context = new_person(browser, bypass_csp=True)
        self.page = self.context.new_page()
        self.dialogs = []
        self.page.on("dialog", self._dialog)
        self.server = server
        sign_in(self.page, server.url, username)
        self.token = csrf_token(self.page)

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message} on {self.page.url}")
        dialog.dismiss()

    def post(self, path, data, json=False):
        headers = {"Accept": "application/json"} if json else {}
        response = self.page.request.post(self.server.url + path, form={"csrf_token": self.token, **data},
                                          headers=headers, max_redirects=0)
        assert response.status in (200, 302), (path, response.status, response.text()[:500])
        return response

    def open(self, path):
        response = self.page.goto(self.server.url + path)
        assert response.status in (200, 409), (path, response.status)
        self.assert_inert()

    def assert_inert(self):
        # An injected handler would have run by the load event (image errors, onload) or at the
        # rendering steps after it (autofocus, toggle, marquee): wait for load, then two frames.
        self.page.wait_for_load_state("load")
        self.page.evaluate(RENDERED_TWICE)
        assert self.dialogs == [], self.dialogs
        assert self.page.evaluate("window.__xss") is None
        assert self.page.evaluate(CHECK_DOM) == []


@pytest.fixture
def people(browser, server):
    nurse, physician = Watched(browser, server, "nurse"), Watched(browser, server, "physician")
    yield nurse, physician
    nurse.context.close()
    physician.context.close()


def version_of(server, session_id):
    with server.app.app_context():
        return db.session.scalar(select(SessionNote.version).where(SessionNote.session_id == session_id))


def note_values(batch):
    short = " ".join(batch)  # a one-line input drops line breaks from its value
    values = {name: ALL if limit >= len(ALL) else short for name, limit in NOTE_TEXT_FIELDS.items()}
    return {**values, **NUMBER_FIELDS}


def test_the_harness_sees_an_injected_handler_despite_the_csp(people, server):
    nurse, _ = people
    nurse.page.goto(f"{server.url}/today")
    # The image's error event comes after a request for /x: wait for the dialog it raises.
    with nurse.page.expect_event("dialog"):
        nurse.page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=alert(1)>')")
    assert nurse.dialogs and nurse.page.evaluate(CHECK_DOM)
    nurse.dialogs.clear()


@pytest.mark.long
def test_payloads_in_every_note_adverse_event_and_addendum_field_render_inert(people, server, long_run):
    """Every payload in `make test-long`; the first two batches in `make test` (tests/test_xss_sweep.py
    renders every payload on every page there, without a browser)."""
    nurse, physician = people
    sessions = []
    for number, batch in enumerate(BATCHES if long_run else BATCHES[:2], start=1):
        session_id = server.discharged_session(f"Xavier Escapewell {number}")
        sessions.append((session_id, batch))
        note = f"/sessions/{session_id}/note"
        values = note_values(batch)
        saved = nurse.post(note + "/autosave", {"version": "0", **values}, json=True)
        assert saved.json()["status"] == "saved"
        for part in chunks(batch, 120):  # the other_kind column holds 120 characters
            nurse.post(note + "/adverse-events", {
                "ae-kind": "other", "ae-other_kind": "\n".join(part), "ae-onset_time": "10:20",
                "ae-severity": "mild", "ae-intervention": ALL, "ae-drug_given": "\n".join(part),
                "ae-outcome": "resolved", "ae-alert_id": ""})

        # The draft: every payload back in its field, unchanged, and nothing ran.
        nurse.open(note)
        for name, value in values.items():
            assert nurse.page.locator(f"[name={name}]").input_value() == stored(value), name
        events = normal(nurse.page.locator("#adverse-events tbody").inner_text())
        assert all(normal(payload) in events for payload in batch)

        if number == 1:
            # A conflict shows their saved text beside mine: both rendered inert. (The page lost what it was
            # opened with, so every field that differs is a conflict.)
            page = nurse.page
            page.evaluate("""() => { document.querySelectorAll('#note-form textarea')
                                       .forEach(el => { el.value = 'mine ' + el.value; });
                                     document.querySelector('#note-form [name=version]').value = '0';
                                     document.querySelector('#note-form [name=opened]').value = '{}'; }""")
            # Save draft first tries the checked autosave: the conflict stops it, and the user asks
            # for the comparison.
            page.get_by_role("button", name="Save draft").click()
            expect(page.locator("#autosave-conflict")).to_be_visible()
            with page.expect_navigation():
                page.get_by_role("button", name="Compare and resolve").click()
            nurse.assert_inert()
            expect_conflict = page.locator(".merge-theirs .note-text")
            assert expect_conflict.count() == sum(limit >= len(ALL) for limit in NOTE_TEXT_FIELDS.values())
            assert all(text == stored(ALL) for text in expect_conflict.all_inner_texts())
            assert page.locator("[name=narrative]").input_value() == "mine " + stored(ALL)

        nurse.post(note + "/complete", {"version": str(version_of(server, session_id))})
        nurse.open(f"/sessions/{session_id}")

    physician.open("/signing")
    for session_id, batch in sessions:
        note = f"/sessions/{session_id}/note"
        physician.post(note + "/sign", {"version": str(version_of(server, session_id)), "password": DEMO_PASSWORD})
        physician.post(note + "/addenda", {"reason": "\n".join(batch).replace("\n", " "), "body": ALL,
                                           "event_on": "", "event_time": "", "password": DEMO_PASSWORD})

        # The signed note: every field, adverse event and the addendum as literal text.
        physician.open(note)
        page = physician.page
        assert page.get_by_test_id("signature-line").count() == 1
        shown = [normal(text) for text in page.locator("dd").all_inner_texts()]
        for name, value in note_values(batch).items():
            if name not in NUMBER_FIELDS:
                assert normal(value) in shown, name
        events = normal(page.locator("#adverse-events tbody").inner_text())
        addendum = normal(page.locator("article.addendum").inner_text())
        for payload in batch:
            assert normal(payload) in events and normal(payload) in addendum
        assert page.locator("article.addendum .note-text").inner_text() == stored(ALL)
        physician.open(f"/sessions/{session_id}")
    nurse.open(f"/sessions/{sessions[0][0]}/note")

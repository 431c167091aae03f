"""Stored XSS across the whole app (reliability.md §8 test 4), without a browser.

The demo clinic with the payload corpus (tests/xss_payloads.py) written into every free-text column
(FREE_TEXT: patient and staff names, chair and tablet names, closures, medications, checklist and
chair notes, follow-ups, protocol notes, policy notes, unsigned notes...), then every GET page
requested as every role: no HTML answer holds a script, event attribute, dangerous URL or element
that is not the app's own, and no template payload comes back evaluated (EVALUATED); every PDF's
text layer (pdftotext) shows the payloads as typed; the reminder texts rendered for a patient named
with a payload, and reminder templates holding payloads, evaluate nothing; emails go out as plain
text only. The browser half, with a dialog listener on every page, is tests/browser/test_xss_pages.py.
"""
import subprocess
from html.parser import HTMLParser

import pytest

from opsmgr.messaging import templates
from opsmgr.messaging.smtp import build_email
from tests.conftest import DEMO_PASSWORD, sign_in
from tests.xss_payloads import EVALUATED, PAYLOADS, PDF_NAME, ROLES, get_urls, page_ids, store_payloads


class Live(HTMLParser):
    """Markup in a page that the app's own templates never write: what user data would have injected."""

    DANGEROUS = {"iframe", "frame", "frameset", "object", "embed", "applet", "math", "base", "marquee", "video",
                 "audio", "source", "portal", "template", "noscript"}
    URLS = {"href", "src", "action", "formaction", "data", "xlink:href", "background", "poster"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found, self.in_body = [], False

    def handle_starttag(self, tag, attrs):
        attrs = [(name.lower(), value or "") for name, value in attrs]
        if tag == "body":
            self.in_body = True
        source = dict(attrs).get("src", "")
        if tag == "script" and not source.startswith("/static/"):
            self.found.append(f"<script src={source!r}>")
        if tag in self.DANGEROUS or (tag in {"meta", "link", "style"} and self.in_body):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            plain = "".join(value.split()).lower()
            if name.startswith("on") or name == "srcdoc":
                self.found.append(f"<{tag} {name}=…>")
            if name in self.URLS and plain.startswith(("javascript:", "vbscript:", "data:text")):
                self.found.append(f"<{tag} {name}={value[:40]!r}>")
            if name == "style" and ("url(" in plain or "expression" in plain):
                self.found.append(f"<{tag} style={value[:40]!r}>")


def live_markup(html):
    parser = Live()
    parser.feed(html)
    parser.close()
    return parser.found


def pdf_text(content):
    return subprocess.run(["pdftotext", "-q", "-", "-"], input=content, capture_output=True, check=True).stdout.decode()


@pytest.fixture
def payload_clinic(demo_clinic):
    stored = store_payloads(demo_clinic.app)
    print(f"\n{stored} payload values stored")
    assert stored > 200
    return demo_clinic.app


def scan(response, url, problems, pdf_texts):
    """Add to `problems` what this answer shows of the payloads other than as text."""
    body = response.get_data()
    if response.mimetype == "text/html":
        html = body.decode()
        problems += [(url, found) for found in live_markup(html)]
        if EVALUATED in html:
            problems.append((url, "a template payload evaluated"))
    elif response.mimetype == "application/pdf" and response.status_code == 200:
        pdf_texts[url] = text = " ".join(pdf_text(body).split())
        if EVALUATED in text:
            problems.append((url, "a template payload evaluated in the PDF"))


@pytest.mark.long
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_page_as_every_role_shows_the_payloads_as_text(backend, payload_clinic, long_run):
    """The long form: every GET page as every role, with a session of every status. The short sample:
    each page once, as the first role allowed to see it, for a discharged session."""
    app = payload_clinic
    urls = get_urls(app, page_ids(app, long_run))
    problems, pdf_texts, pages, shown = [], {}, 0, set()
    for role in ROLES:
        client = app.test_client()
        sign_in(client, role, DEMO_PASSWORD)
        for _, url in urls:
            if url in pdf_texts or (url in shown and not long_run):
                continue  # a PDF is the same for every role allowed to see it: read once
            response = client.get(url)
            assert response.status_code < 500, (role, url)
            if response.status_code != 403:
                shown.add(url)
                pages += response.mimetype == "text/html"
            scan(response, url, problems, pdf_texts)
    print(f"\n{pages} HTML pages and {len(pdf_texts)} PDFs from {len(urls)} URLs as {len(ROLES)} roles")
    assert not problems, problems[:20]
    assert len(shown) >= len(urls) - 3, sorted(set(u for _, u in urls) - shown)
    assert any(PDF_NAME in text for text in pdf_texts.values()), "the payload-named patient's summary printed"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_reminders_for_a_payload_named_patient_evaluate_nothing(backend, app):
    values_of = {"reminder_sms": "Hi {{ first_name }}, see you {{ session_day }}.",
                 "reminder_email_subject": "{{ first_name }}: your appointment",
                 "reminder_email_body": "Dear {{ first_name }},\nsee you at {{ session_time }}."}
    with app.test_request_context():
        sample = templates.sample_values()
        for payload in PAYLOADS:
            values = {**sample, "first_name": payload}
            for name in values_of:
                rendered = templates.render(name, values, texts=values_of)
                assert EVALUATED not in rendered
                assert (" ".join(payload.split()) if name == "reminder_email_subject" else payload) in rendered
            email = build_email(type("Msg", (), {"to": "p@example.org", "subject": payload.replace("\n", " "),
                                                 "body": payload, "message_id": "k1"})(),
                                mail_from="clinic@example.org", now=templates.utcnow())
            assert email.get_content_type() == "text/plain" and not email.is_multipart()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_reminder_templates_holding_payloads_are_refused_or_sent_as_typed(backend, app):
    with app.test_request_context():
        values = templates.sample_values()
        for payload in PAYLOADS:
            text = f"See you {{{{ session_day }}}}. {payload}"
            if templates.template_problems("reminder_sms", text):
                continue  # refused when saved: an admin sees why, the scheduler never meets it
            rendered = templates.render("reminder_sms", values, texts={"reminder_sms": text})
            assert EVALUATED not in rendered
            assert "{% raw %}" in payload or payload.strip() in rendered


def test_the_scan_sees_injected_markup_and_passes_escaped_text():
    injected = ['<img src=x onerror=alert(1)>', '<a href=" javascript:alert(1)">x</a>', "<script>alert(1)</script>",
                '<svg><animate onbegin=alert(1)>', '<iframe srcdoc="x"></iframe>', '<div style="background:url(x)">']
    assert all(live_markup(html) for html in injected)
    escaped = "<p>&lt;img src=x onerror=alert(1)&gt; {{1234*5678}}</p><script src=\"/static/js/app.js\"></script>"
    assert live_markup(escaped) == []

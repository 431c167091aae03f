"""Stored XSS in Chromium across the whole app (reliability.md §8 test 4): the demo clinic with the payload
corpus in every free-text column (tests/xss_payloads.py), every page opened as every role with a dialog
listener and the DOM checked for injected elements, handlers and URLs (test_note_xss's CHECK_DOM), and
the HTML each PDF is printed from loaded the same way. Zero dialogs, nothing injected.

Marked `long`: `make test` opens a short sample (SAMPLE, as the physician); `make test-long` every page
as every role, with a session of every status, and the printed HTML of a session summary and of a series
summary's DRAFT preview.
"""
import pytest

from opsmgr.reports import render
from opsmgr.rules.reports import SUMMARY_MAX_CHARACTERS
from tests.browser.conftest import migrated_app, seed_demo, serving
from tests.browser.test_note_xss import CHECK_DOM, RENDERED_TWICE, Watched
from tests.xss_payloads import PAYLOADS, ROLES, get_urls, page_ids, store_payloads

pytestmark = pytest.mark.browser

#: The short sample's pages: the board, the week grid, a chart, a series, a session's chair page and note,
#: the follow-ups and the outcomes report (their endpoints).
SAMPLE = ("worklists.board", "worklists.week", "patients.detail", "series.detail", "infusion.page", "notes.page",
          "followups.worklist_page", "outcomes.page")
#: The physician's paragraph of the previewed series summary: as many payloads as it holds.
SUMMARY = "\n".join(PAYLOADS)[:SUMMARY_MAX_CHARACTERS]
#: Answers that are files, not pages: their HTML (for the PDFs) is checked separately.
FILES = (".pdf", ".ics", ".csv", ".json")


#: test_note_xss's DOM check, allowing the app's own images and inline charts (its attribute checks still
#: catch a handler or a script URL on them) and a style element in the head (the printed HTML has one).
CHECK = CHECK_DOM.replace(' || tag === "svg" || tag === "img"', "").replace('"style", ', "").replace(
    'if ((tag === "meta" || tag === "link")', 'if ((tag === "meta" || tag === "link" || tag === "style")')
assert CHECK != CHECK_DOM


class Person(Watched):
    def assert_inert(self):
        self.page.wait_for_load_state("load")
        self.page.evaluate(RENDERED_TWICE)
        assert self.dialogs == [], self.dialogs
        assert self.page.evaluate("window.__xss") is None
        assert self.page.evaluate(CHECK) == [], self.page.url


class PayloadServer:
    def __init__(self, app, url):
        self.app, self.url, self.printed = app, url, []


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from opsmgr.core.clock import system_now

    at = system_now()
    app = migrated_app(tmp_path_factory.mktemp("xss-pages"), "xss", lambda: seed_demo(lambda: at))
    assert store_payloads(app) > 200
    with serving(app) as url:
        yield PayloadServer(app, url)


@pytest.fixture
def printed(server, monkeypatch):
    """The HTML of every PDF the server prints while the test runs."""
    original = render.html_to_pdf

    def keep(html, *args, **kwargs):
        server.printed.append(html)
        return original(html, *args, **kwargs)

    monkeypatch.setattr(render, "html_to_pdf", keep)
    return server.printed


def opened(person, url):
    """Open `url` as `person` and check it inert; False when the role may not see it."""
    response = person.page.goto(person.server.url + url)
    if response.status in (403, 404):
        return False
    assert response.status < 500, (url, response.status)  # a 400 or 409 page is a page too: checked alike
    person.assert_inert()
    return True


@pytest.mark.long
def test_every_page_and_printed_html_with_payloads_fires_no_dialog(browser, server, printed, long_run):
    urls = [(endpoint, url) for endpoint, url in get_urls(server.app, page_ids(server.app, long_run))
            if not url.endswith(FILES) and not url.split("?")[0].endswith(FILES)]
    roles = ROLES if long_run else ("physician",)
    if not long_run:
        urls = [(endpoint, url) for endpoint, url in urls if endpoint in SAMPLE]
    shown = 0
    for role in roles:
        person = Person(browser, server, role)
        try:
            shown += sum(opened(person, url) for _, url in urls)
            if role == "physician" and long_run:  # printing takes seconds: the long form only
                session_id = page_ids(server.app, False)[0]["session_id"]
                pdf = person.page.request.get(f"{server.url}/sessions/{session_id}/summary.pdf", timeout=120_000)
                assert pdf.status == 200 and printed
                # The series summary's DRAFT preview, with the payloads as the physician's paragraph.
                series_id = page_ids(server.app, False)[0]["series_id"]
                draft = person.page.request.post(f"{server.url}/series/{series_id}/summary/preview", timeout=120_000,
                                                 form={"csrf_token": person.token, "summary": SUMMARY})
                assert draft.status == 200 and len(printed) == 2, draft.status
                for html in printed:
                    person.page.set_content(html, wait_until="load")
                    person.assert_inert()
        finally:
            person.context.close()
    print(f"\n{shown} pages opened as {len(roles)} roles, {len(printed)} printed HTML; no dialog")
    assert shown >= (len(urls) if not long_run else len(urls) * 2) and (printed or not long_run)

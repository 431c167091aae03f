"""Staff flows driven through a real Chromium: sign-in, sign-out, keyboard use, small screens, CSP, labels."""
import re

import pytest
from playwright.sync_api import expect

from opsmgr.auth.views import LOGIN_FAILED
from tests.browser.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.browser

NURSE_NAME = "Demo Nurse (fictional)"
#: Text that only the nurse's home page shows; none of it may survive sign-out.
NURSE_HOME_TEXT = ("Today's chairs", NURSE_NAME, "Check in", "Next:")
LOGIN_URL = re.compile(r"/login(\?.*)?$")

UNLABELLED_FIELDS_JS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
    // type=hidden and the `hidden` attribute: never rendered, not in the accessibility tree
    .filter(el => (el.getAttribute('type') || '').toLowerCase() !== 'hidden' && !el.hidden)
    .map(el => ({name: el.name || el.id || el.outerHTML, labelled: el.labels.length > 0}))"""

#: Collected by an init script (it runs before the page's own scripts and is not subject to the CSP).
CSP_LISTENER_JS = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
});"""


def h1(page):
    return page.get_by_role("heading", level=1)


def expect_sign_in_page(page):
    expect(page).to_have_url(LOGIN_URL)
    expect(h1(page)).to_have_text("Sign in")


def sign_in(page, base_url, username, password=DEMO_PASSWORD):
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def no_horizontal_scroll(page):
    page.wait_for_load_state("load")  # measured with the stylesheets applied
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"horizontal scrollbar: content is {width}px wide in a {inner}px window"


def test_nurse_signs_in_sees_home_signs_out_and_back_shows_no_page_behind_login(page, live_server):
    page.goto(live_server)
    expect_sign_in_page(page)

    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(h1(page)).to_have_text("Today's chairs")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text(NURSE_NAME)

    page.get_by_role("button", name="Sign out").click()
    expect_sign_in_page(page)
    expect(page.get_by_role("status").filter(has_text="You have signed out.")).to_be_visible()

    for steps_back in (1, 2):
        page.go_back()
        expect_sign_in_page(page)
        page.wait_for_load_state()
        expect(page.get_by_role("heading", name="Today's chairs")).to_have_count(0)
        html = page.content()
        shown = [text for text in NURSE_HOME_TEXT if text in html.replace("&#39;", "'")]
        assert not shown, f"after sign-out and {steps_back} x Back the page still shows {shown}"
        expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_keyboard_only_sign_in_and_skip_link(page, live_server):
    page.goto(f"{live_server}/login")
    username = page.get_by_label("Username")
    password = page.get_by_label("Password")
    expect(username).to_be_focused()  # autofocus

    page.keyboard.type("coordinator")
    page.keyboard.press("Tab")
    expect(password).to_be_focused()
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")

    expect(h1(page)).to_have_text("Follow-up worklist")  # the coordinator's home
    expect(page).to_have_url(re.compile(r"/worklist/$"))

    skip = page.get_by_role("link", name="Skip to main content")
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # visually hidden until focused
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()


def test_wrong_password_shows_the_generic_error_next_to_the_password_field(page, live_server):
    sign_in(page, live_server, "physician", "not the physician's password")

    expect_sign_in_page(page)
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    described_by = password.get_attribute("aria-describedby") or ""
    assert described_by.split(), "the password field names no description"
    errors = [page.locator(f"[id='{error_id}']") for error_id in described_by.split()]
    error_texts = []
    for error in errors:
        expect(error).to_have_count(1)
        expect(error).to_be_visible()
        error_texts.append(error.inner_text())
    assert any(LOGIN_FAILED in text for text in error_texts), error_texts
    expect(page.get_by_role("alert")).to_contain_text(LOGIN_FAILED)

    expect(page.get_by_label("Username")).to_have_value("physician")
    expect(password).to_have_value("")
    expect(password).to_be_focused()

    # An unknown username gets the very same message: nothing tells which part was wrong.
    page.get_by_label("Username").fill("nobody-here")
    password.fill("whatever it may be")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(re.compile(re.escape(LOGIN_FAILED)))
    expect(page.get_by_label("Username")).to_have_value("nobody-here")


#: How far apart (px) the vertical centres of the brand and the menu's items are: one line when small.
NAV_SPREAD_JS = """() => {
  const items = [document.querySelector('.navbar-brand'),
                 ...document.querySelectorAll('#main-nav > .navbar-nav > .nav-item')];
  const centres = items.map(el => el.getBoundingClientRect()).map(r => r.top + r.height / 2);
  return Math.max(...centres) - Math.min(...centres);
}"""


def expect_navigation_on_one_line(page):
    # Measured once the stylesheets have loaded: before that the menu is an unstyled list, one item a line.
    page.wait_for_load_state("load")
    spread = page.evaluate(NAV_SPREAD_JS)
    assert spread < 16, f"the navigation wraps: its items' centres are {spread:.0f}px apart"


@pytest.mark.parametrize("viewport", [{"width": 768, "height": 1024}], ids=["tablet-768x1024"])
def test_tablet_navigation_fits_one_line_and_never_scrolls_sideways(page, live_server):
    sign_in(page, live_server, "nurse")
    expect(h1(page)).to_have_text("Today's chairs")
    nav = page.get_by_role("navigation", name="Main")
    sign_out = page.get_by_role("button", name="Sign out")
    toggler = page.get_by_role("button", name="Show navigation")
    account = page.get_by_test_id("signed-in-as")

    # Tablet portrait (768 px) and a desktop window: the whole menu on one line, no toggler.
    for size in ({"width": 768, "height": 1024}, {"width": 1280, "height": 800}):
        page.set_viewport_size(size)
        expect(toggler).to_be_hidden()
        expect(sign_out).to_be_visible()
        expect(nav.get_by_role("link", name="Today's chairs")).to_be_visible()
        expect_navigation_on_one_line(page)
        no_horizontal_scroll(page)

    # On the tablet the account button shows the role; its menu names the nurse and holds the password page.
    page.set_viewport_size({"width": 768, "height": 1024})
    expect(account).to_contain_text("Nurse")
    account.click()
    expect(account).to_have_attribute("aria-expanded", "true")
    expect(nav.locator(".dropdown-menu").get_by_text(NURSE_NAME, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Password")).to_be_visible()
    page.keyboard.press("Escape")
    expect(account).to_have_attribute("aria-expanded", "false")

    # A phone (576 px): the menu folds behind the toggler instead of wrapping onto two lines; the
    # toggler needs Bootstrap's JS to run under the strict CSP (no inline script).
    page.set_viewport_size({"width": 576, "height": 900})
    expect(toggler).to_be_visible()
    expect(toggler).to_have_attribute("aria-expanded", "false")
    expect(sign_out).to_be_hidden()
    no_horizontal_scroll(page)
    toggler.click()
    expect(toggler).to_have_attribute("aria-expanded", "true")
    # Bootstrap animates the menu open ("collapsing"); a click during the animation can land on
    # the still-clipped button and do nothing, as a person's would. Wait until it is fully open.
    expect(page.locator("#main-nav")).to_have_class(re.compile(r"(^|\s)show(\s|$)"))
    expect(sign_out).to_be_visible()
    expect(nav).to_contain_text(NURSE_NAME)
    no_horizontal_scroll(page)

    sign_out.click()
    expect_sign_in_page(page)
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    no_horizontal_scroll(page)

    # The physician has the most items (and the admin its own four): one line on the tablet too.
    for username in ("physician", "admin"):
        page.set_viewport_size({"width": 768, "height": 1024})
        sign_in(page, live_server, username)
        expect(sign_out).to_be_visible()
        expect_navigation_on_one_line(page)
        no_horizontal_scroll(page)
        sign_out.click()
        expect_sign_in_page(page)


def test_no_console_errors_or_csp_violations_on_login_and_nurse_home(context, live_server):
    context.add_init_script(CSP_LISTENER_JS)
    page = context.new_page()
    problems = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))

    def check(where):
        page.wait_for_load_state("networkidle")
        violations = page.evaluate("() => window.__cspViolations")
        problems.extend(f"CSP violation on {where}: {violation}" for violation in violations)
        # Every page makes the browser ask for an icon: the declared one, or /favicon.ico. Chromium
        # remembers a failed icon per browser, so check it directly rather than rely on the console.
        icon = page.evaluate("() => (document.querySelector('link[rel~=icon]') || {}).href || null")
        icon = icon or f"{live_server}/favicon.ico"
        if not icon.startswith("data:"):
            response = page.request.get(icon)
            if not response.ok:
                problems.append(f"{where}: the browser's icon request {icon} gets HTTP {response.status} "
                                "(a console error: 'Failed to load resource')")
            response.dispose()

    page.goto(live_server)
    expect_sign_in_page(page)
    check("the login page")

    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(h1(page)).to_have_text("Today's chairs")
    check("the nurse home")

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("where", ["login", "change-password"])
def test_every_field_has_a_label_and_the_page_has_landmarks(page, live_server, where):
    if where == "login":
        page.goto(f"{live_server}/login")
        expect_sign_in_page(page)
        expected_labels = ["Username", "Password"]
    else:
        sign_in(page, live_server, "admin")
        expect(h1(page)).to_have_text("Staff accounts")
        # The account menu is Bootstrap's dropdown: its script is deferred, so it answers a click only
        # once the document has been parsed (the heading shows earlier, while the page streams in).
        page.wait_for_load_state("domcontentloaded")
        page.get_by_test_id("signed-in-as").click()
        expect(page.get_by_role("link", name="Password")).to_be_visible()
        page.get_by_role("link", name="Password").click()
        expect(h1(page)).to_have_text("Change your password")
        expected_labels = ["Current password", "New password", "Repeat the new password"]

    fields = page.evaluate(UNLABELLED_FIELDS_JS)
    assert fields, "no form fields found"
    unlabelled = [field["name"] for field in fields if not field["labelled"]]
    assert unlabelled == [], f"fields without a label: {unlabelled}"
    for label in expected_labels:
        expect(page.get_by_label(label, exact=True)).to_have_count(1)

    expect(page.locator("h1")).to_have_count(1)
    expect(page.get_by_role("main")).to_have_count(1)
    expect(page.get_by_role("navigation")).not_to_have_count(0)

"""A chair tablet at the chair (issue 14 §6), in Chromium on the demo clinic with a clock the test moves:
an admin enrols the tablet, the nurse signs in there, idle locks the screen, her PIN brings her back to the
same page, with what she had typed put back when the page's own idle timer locked it, and a board whose poll
finds the screen locked shows the lock screen at once; a colleague's PIN is refused there and "Not you?"
leads to a full sign-in."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.browser

NURSE_PIN, PHYSICIAN_PIN = "2580", "1397"


def sign_in(page, url, username):
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out", include_hidden=True)).to_be_attached()


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def set_pin(page, url, pin):
    page.goto(f"{url}/account/pin")
    page.get_by_label("Your password").fill(DEMO_PASSWORD)
    page.get_by_label("New PIN", exact=True).fill(pin)
    page.get_by_label("Repeat the new PIN").fill(pin)
    page.get_by_role("button", name="Set PIN").click()
    expect(page.get_by_text("Your PIN is set.")).to_be_visible()


def enrol_this_tablet(page, url):
    sign_in(page, url, "admin")
    page.goto(f"{url}/admin/tablets/")
    page.get_by_label("Device name").fill("Chair 3 tablet")
    page.get_by_role("button", name="Enrol this device as a chair tablet").click()
    expect(page.get_by_test_id("tablets").get_by_text("This device")).to_be_visible()
    sign_out(page)


def expect_locked(page, who):
    expect(page.get_by_role("heading", level=1)).to_have_text("Locked")
    expect(page.get_by_test_id("locked-user")).to_have_text(who)
    expect(page.get_by_role("navigation")).to_have_count(0)


def test_idle_locks_the_tablet_the_pin_resumes_the_page_and_a_colleague_signs_in_fully(
        page, new_context, clocked_live_server):
    url, clock = clocked_live_server.url, clocked_live_server.clock
    desk = new_context().new_page()  # the physician sets a PIN at a desktop
    sign_in(desk, url, "physician")
    set_pin(desk, url, PHYSICIAN_PIN)

    enrol_this_tablet(page, url)
    sign_in(page, url, "nurse")
    set_pin(page, url, NURSE_PIN)
    page.goto(f"{url}/patients/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Patients")

    clock.advance(minutes=6)
    page.reload()
    expect_locked(page, "Demo Nurse (fictional), RN")
    expect(page.locator("body")).not_to_contain_text("Demo-")  # no patient's name on the lock screen
    page.get_by_label("PIN", exact=True).fill(NURSE_PIN)
    page.get_by_role("button", name="Unlock").click()
    expect(page).to_have_url(f"{url}/patients/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Patients")

    # Typing, then walking away: the page's idle timer locks the screen; the PIN brings the typing back.
    page.clock.install()
    page.goto(f"{url}/patients/new")
    page.get_by_label("Legal name").fill("Quinn Typed-Before-Lock")
    page.clock.fast_forward("05:01")
    expect_locked(page, "Demo Nurse (fictional), RN")
    expect(page.locator("body")).not_to_contain_text("Quinn")
    page.get_by_label("PIN", exact=True).fill(NURSE_PIN)
    page.get_by_role("button", name="Unlock").click()
    expect(page).to_have_url(f"{url}/patients/new")
    expect(page.get_by_label("Legal name")).to_have_value("Quinn Typed-Before-Lock")
    expect(page.get_by_role("status").filter(has_text="The screen locked before this was saved.")).to_be_visible()

    # The board's poll finds the screen locked (idle on the server): the lock screen replaces the names.
    page.goto(f"{url}/today")
    expect(page.locator("#board-live")).to_be_attached()
    clock.advance(minutes=6)
    page.clock.fast_forward("00:16")
    expect_locked(page, "Demo Nurse (fictional), RN")
    page.get_by_label("PIN", exact=True).fill(NURSE_PIN)
    page.get_by_role("button", name="Unlock").click()
    expect(page).to_have_url(f"{url}/today")

    clock.advance(minutes=6)
    page.reload()
    expect_locked(page, "Demo Nurse (fictional), RN")
    page.get_by_label("PIN", exact=True).fill(PHYSICIAN_PIN)  # the physician's own PIN opens only her screen
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_text("That PIN is not correct.")).to_be_visible()
    expect_locked(page, "Demo Nurse (fictional), RN")
    page.get_by_role("button", name="Not you? Sign in as someone else").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    sign_in(page, url, "physician")
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("Physician")

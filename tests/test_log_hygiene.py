"""No passwords, session tokens or patient details reach the application log (ASVS 16.2.5)."""
import logging
import re

from tests.conftest import PASSWORD

CANARY_NAME = "Canaryname Zyxwvut"
CANARY_MRN = "CANARY-9931"
CANARY_PASSWORD = "canary passphrase 4471 never logged"


def test_a_working_day_leaves_no_secrets_or_phi_in_the_log(app, make_user, login_as, caplog):
    caplog.set_level(logging.DEBUG)
    nurse = make_user("nurse", password=CANARY_PASSWORD)
    client = app.test_client()
    client.login(nurse.username, "a wrong password " + CANARY_PASSWORD[:6])
    client.login(nurse.username, CANARY_PASSWORD)
    token = client.get_cookie("opsmgr").value
    registered = client.submit("/patients/new", {
        "mrn": CANARY_MRN, "legal_name": CANARY_NAME, "date_of_birth": "1980-02-03", "sex_at_birth": "male",
        "pregnancy_possible": "no", "indication": "trd", "reminder_channel": "none", "failed_trials": "3"})
    errors = re.findall(r"<strong>Error:</strong> ([^<]*)", registered.get_data(as_text=True))
    assert registered.status_code == 302, errors
    client.get(registered.headers["Location"])
    client.get(f"/patients/?q={CANARY_NAME.split()[0]}")
    client.submit("/patients/new", {"mrn": CANARY_MRN, "legal_name": CANARY_NAME})  # a refused duplicate
    client.logout()
    login_as("admin").get("/admin/audit/")
    log = caplog.text
    for secret in (CANARY_PASSWORD, CANARY_NAME, CANARY_MRN, token, PASSWORD, CANARY_NAME.split()[0]):
        assert secret not in log

"""The channels against real local servers: aiosmtpd for email, a Twilio Messages stand-in for SMS,
and the outbox folder when nothing is configured. App-level only: no database."""
import json
import logging
import os
import stat
from datetime import UTC, datetime
from email import message_from_bytes
from email.parser import BytesParser
from email.policy import default as default_policy

import pytest
from flask import Flask, request
from twilio.request_validator import RequestValidator

from config import Config
from opsmgr.messaging.channels import DeliveryError, OutgoingEmail, OutgoingSms, email_sender, sms_sender
from opsmgr.messaging.files import EmailFileSender, SmsFileSender
from opsmgr.messaging.sms import TwilioSender, verify_twilio
from opsmgr.messaging.smtp import SmtpSender
from tests.messaging_servers import *  # noqa: F403 - the server fixtures
from tests.messaging_servers import SMTP_PASSWORD, SMTP_USER
from tests.pg import free_port

NOW = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)
MAIL_FROM = "Infusion clinic <reminders@clinic.example.org>"
PUBLIC_URL = "https://clinic.example.org"
ACCOUNT_SID = "AC" + "0" * 31 + "7"
AUTH_TOKEN = "test-auth-token-not-real"
CLINIC_NUMBER = "+15550001111"
PATIENT_NUMBER = "+15551234567"
BODY = "Reminder: your appointment is tomorrow at 09:00. Reply YES to confirm."


def make_channel_app(tmp_path, **env):
    """A bare Flask app whose config is config.Config read from ``env``: no database."""
    config = Config({"OPSMGR_INSTANCE_PATH": str(tmp_path / "instance"), "OPSMGR_TIMEZONE": "UTC",
                     "OPSMGR_SECRET_KEY": "k", "OPSMGR_AUDIT_KEY": "a",
                     **{f"OPSMGR_{name}": str(value) for name, value in env.items()}})
    app = Flask(__name__)
    app.config.from_object(config)
    app.config["CLOCK"] = lambda: NOW
    return app


def smtp_app(tmp_path, server, **env):
    return make_channel_app(tmp_path, SMTP_HOST=server.host, SMTP_PORT=server.port, MAIL_FROM=MAIL_FROM, **env)


def twilio_app(tmp_path, stand_in, **env):
    env.setdefault("TWILIO_FROM", CLINIC_NUMBER)
    return make_channel_app(tmp_path, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                            TWILIO_API_BASE=stand_in.url, PUBLIC_URL=PUBLIC_URL, **env)


def email(n=1, to="pat@example.net"):
    return OutgoingEmail(to=to, subject="Your appointment tomorrow", body=f"{BODY} ({n})",
                         message_id=f"reminder:session:{n}:24h")


def sms(key="reminder:session:42:24h", **kwargs):
    return OutgoingSms(to=PATIENT_NUMBER, body=BODY, idempotency_key=key, **kwargs)


def our_log(caplog):
    """What opsmgr and the libraries it drives logged; not the test SMTP server's own log."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))


def parsed(received):
    return message_from_bytes(received.content, policy=default_policy)


# --------------------------------------------------------------------------------------------
# Configuration picks the channel; a half-configured channel stops the start
# --------------------------------------------------------------------------------------------

def test_with_nothing_configured_both_channels_write_files_into_instance_outbox(tmp_path):
    app = make_channel_app(tmp_path)
    assert isinstance(email_sender(app), EmailFileSender)
    assert isinstance(sms_sender(app), SmsFileSender)
    assert app.config["OUTBOX_DIR"] == str(tmp_path / "instance" / "outbox")


def test_configured_smtp_and_twilio_are_chosen_with_default_ports(tmp_path, twilio_stand_in):
    app = twilio_app(tmp_path, twilio_stand_in, SMTP_HOST="smtp.example.org", MAIL_FROM=MAIL_FROM,
                     SMTP_SECURITY="tls")
    assert isinstance(email_sender(app), SmtpSender) and app.config["SMTP_PORT"] == 465
    assert isinstance(sms_sender(app), TwilioSender)


@pytest.mark.parametrize(("env", "named"), [
    ({"SMTP_SECURITY": "ssl"}, "OPSMGR_SMTP_SECURITY"),
    ({"SMTP_HOST": "smtp.example.org"}, "OPSMGR_MAIL_FROM"),
    ({"SMTP_USER": "u", "SMTP_SECURITY": "none"}, "in clear"),
    ({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_FROM": CLINIC_NUMBER, "PUBLIC_URL": PUBLIC_URL},
     "OPSMGR_TWILIO_AUTH_TOKEN"),
    ({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_URL": PUBLIC_URL},
     "OPSMGR_TWILIO_MESSAGING_SERVICE_SID"),
    ({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": CLINIC_NUMBER,
      "PUBLIC_URL": "http://clinic.example.org"}, "https://"),
])
def test_a_half_configured_channel_is_refused_at_start_naming_the_variable(tmp_path, env, named):
    with pytest.raises(ValueError, match=named):
        make_channel_app(tmp_path, **env)


# --------------------------------------------------------------------------------------------
# Email through a real SMTP server
# --------------------------------------------------------------------------------------------

def test_an_email_arrives_with_its_headers_and_a_message_id_made_from_its_key(tmp_path, smtp_server):
    sender = email_sender(smtp_app(tmp_path, smtp_server, SMTP_SECURITY="none"))
    first = sender.send(email(7))
    again = sender.send(email(7))  # a resend after a crash
    assert first == again
    one, two = smtp_server.handler.messages
    assert one.mail_from == "reminders@clinic.example.org" and one.rcpt_tos == ["pat@example.net"]
    mail = parsed(one)
    assert mail["Message-ID"] == first == parsed(two)["Message-ID"]
    assert first.startswith("<reminder_session_7_24h-") and first.endswith("@clinic.example.org>")
    assert (mail["From"], mail["To"], mail["Subject"]) == (MAIL_FROM, "pat@example.net", "Your appointment tomorrow")
    assert mail["Date"] == "Sat, 05 Dec 2026 14:30:00 +0000" and mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content().strip() == f"{BODY} (7)"
    assert sender.send(email(8)) != first


def test_starttls_with_a_login_delivers_to_a_server_that_requires_both(tmp_path, smtp_starttls_server):
    app = smtp_app(tmp_path, smtp_starttls_server, SMTP_SECURITY="starttls", SMTP_CA_FILE=smtp_starttls_server.ca_file,
                   SMTP_USER=SMTP_USER, SMTP_PASSWORD=SMTP_PASSWORD)
    message_id = email_sender(app).send(email())
    (received,) = smtp_starttls_server.handler.messages
    assert parsed(received)["Message-ID"] == message_id


def test_implicit_tls_delivers(tmp_path, smtp_tls_server):
    app = smtp_app(tmp_path, smtp_tls_server, SMTP_SECURITY="tls", SMTP_CA_FILE=smtp_tls_server.ca_file)
    email_sender(app).send(email())
    assert len(smtp_tls_server.handler.messages) == 1


def test_a_wrong_smtp_password_is_retryable_not_the_messages_fault(tmp_path, smtp_starttls_server):
    app = smtp_app(tmp_path, smtp_starttls_server, SMTP_SECURITY="starttls", SMTP_CA_FILE=smtp_starttls_server.ca_file,
                   SMTP_USER=SMTP_USER, SMTP_PASSWORD="wrong")
    with pytest.raises(DeliveryError) as refused:
        email_sender(app).send(email())
    assert refused.value.permanent is False and refused.value.code == 535


@pytest.mark.parametrize(("reply", "permanent"), [
    ("550 5.1.1 <pat@example.net>: mailbox unavailable", True),
    ("450 4.2.1 <pat@example.net>: try again later", False),
])
def test_a_refused_recipient_is_permanent_on_5xx_and_retryable_on_4xx(tmp_path, smtp_server, reply, permanent):
    smtp_server.handler.refuse["pat@example.net"] = reply
    with pytest.raises(DeliveryError) as refused:
        email_sender(smtp_app(tmp_path, smtp_server, SMTP_SECURITY="none")).send(email())
    assert refused.value.permanent is permanent and refused.value.code == int(reply[:3])
    assert "pat@example.net" not in str(refused.value) and reply[4:9] in str(refused.value)


def test_an_smtp_server_that_is_down_is_retryable_for_every_message(tmp_path):
    app = make_channel_app(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_SECURITY="none",
                           MAIL_FROM=MAIL_FROM)
    with pytest.raises(DeliveryError) as down:
        email_sender(app).send(email())
    assert down.value.permanent is False
    results = email_sender(app).send_many([email(1), email(2)])
    assert [(type(r), r.permanent) for r in results] == [(DeliveryError, False)] * 2


def test_send_many_uses_one_connection_and_a_refusal_does_not_stop_the_rest(tmp_path, smtp_server, caplog):
    caplog.set_level(logging.DEBUG)
    smtp_server.handler.refuse["gone@example.net"] = "550 5.1.1 mailbox unavailable"
    batch = [email(1), email(2), email(3, to="gone@example.net"), email(4), email(5)]
    reported = []
    results = email_sender(smtp_app(tmp_path, smtp_server, SMTP_SECURITY="none")).send_many(
        batch, on_result=lambda index, result: reported.append((index, result, len(smtp_server.handler.messages))))
    assert [(index, received) for index, _, received in reported] == [(0, 1), (1, 2), (2, 2), (3, 3), (4, 4)]
    assert [result for _, result, _ in reported] == results
    assert isinstance(results[2], DeliveryError) and results[2].permanent
    delivered = [parsed(m)["Message-ID"] for m in smtp_server.handler.messages]
    assert delivered == [r for i, r in enumerate(results) if i != 2]
    assert smtp_server.handler.connections == 1
    for private in ("pat@example.net", "gone@example.net", BODY):
        assert private not in our_log(caplog)


def test_send_many_reconnects_when_the_server_closes_a_connection(tmp_path, smtp_server):
    smtp_server.handler.per_connection_limit = 2  # answers 421 to the third MAIL on a connection
    results = email_sender(smtp_app(tmp_path, smtp_server, SMTP_SECURITY="none")).send_many(
        [email(n) for n in range(5)])
    assert not any(isinstance(r, DeliveryError) for r in results)
    assert [parsed(m)["Message-ID"] for m in smtp_server.handler.messages] == results  # each once, in order
    assert smtp_server.handler.connections == 3


def test_a_server_that_drops_every_fresh_connection_leaves_the_rest_for_a_retry(tmp_path, smtp_server):
    smtp_server.handler.per_connection_limit = 0
    results = email_sender(smtp_app(tmp_path, smtp_server, SMTP_SECURITY="none")).send_many(
        [email(n) for n in range(3)])
    assert [(r.permanent, r.code) for r in results] == [(False, 421)] * 3
    assert smtp_server.handler.messages == []


# --------------------------------------------------------------------------------------------
# SMS through the Twilio Messages stand-in
# --------------------------------------------------------------------------------------------

def test_twilio_receives_to_from_body_and_status_callback_with_basic_auth(tmp_path, twilio_stand_in, caplog):
    caplog.set_level(logging.DEBUG)
    sender = sms_sender(twilio_app(tmp_path, twilio_stand_in))
    assert sender.send(sms()) == "SM" + "0" * 31 + "1"
    (post,) = twilio_stand_in.posts
    assert post.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert (post.user, post.password) == (ACCOUNT_SID, AUTH_TOKEN)
    assert post.form == {"To": PATIENT_NUMBER, "From": CLINIC_NUMBER, "Body": BODY,
                         "StatusCallback": f"{PUBLIC_URL}/sms/status"}
    for private in (PATIENT_NUMBER, BODY, AUTH_TOKEN):
        assert private not in our_log(caplog)


def test_a_messaging_service_and_a_message_s_own_callback_are_posted(tmp_path, twilio_stand_in):
    sender = sms_sender(twilio_app(tmp_path, twilio_stand_in, TWILIO_FROM="", TWILIO_MESSAGING_SERVICE_SID="MG1"))
    sender.send(sms(status_callback=f"{PUBLIC_URL}/sms/status?key=k1"))
    (post,) = twilio_stand_in.posts
    assert post.form["MessagingServiceSid"] == "MG1" and "From" not in post.form
    assert post.form["StatusCallback"] == f"{PUBLIC_URL}/sms/status?key=k1"


@pytest.mark.parametrize(("status", "code", "permanent"), [
    (400, 21211, True),   # invalid 'To' number
    (400, 21610, True),   # the patient has replied STOP
    (429, 20429, False),  # too many requests
    (500, None, False),
    (503, 20503, False),
])
def test_twilio_refusals_are_permanent_on_4xx_and_retryable_on_5xx(tmp_path, twilio_stand_in, status, code,
                                                                    permanent):
    twilio_stand_in.fail(status, code, f"The 'To' number {PATIENT_NUMBER} is not valid")
    with pytest.raises(DeliveryError) as refused:
        sms_sender(twilio_app(tmp_path, twilio_stand_in)).send(sms())
    assert refused.value.permanent is permanent and refused.value.code == (code or status)
    assert PATIENT_NUMBER not in str(refused.value)


def test_twilio_unreachable_is_retryable(tmp_path, twilio_stand_in):
    twilio_stand_in.url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DeliveryError) as down:
        sms_sender(twilio_app(tmp_path, twilio_stand_in)).send(sms())
    assert down.value.permanent is False


# --------------------------------------------------------------------------------------------
# The webhook signature
# --------------------------------------------------------------------------------------------

FORM = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": PATIENT_NUMBER}


def signed(url, form=FORM, token=AUTH_TOKEN):
    return RequestValidator(token).compute_signature(url, form)


@pytest.mark.parametrize(("signature", "form", "valid"), [
    (signed(f"{PUBLIC_URL}/sms/status?key=k1"), FORM, True),
    (signed(f"{PUBLIC_URL}:443/sms/status?key=k1"), FORM, True),
    (None, FORM, False),                                                          # missing
    ("c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ==", FORM, False),                            # forged
    (signed(f"{PUBLIC_URL}/sms/status?key=k1", token="another-token"), FORM, False),
    (signed(f"{PUBLIC_URL}/sms/status?key=k1"), {**FORM, "MessageStatus": "failed"}, False),  # altered
    (signed(f"{PUBLIC_URL}/sms/status"), FORM, False),                            # without the query
    (signed("https://other.example.org/sms/status?key=k1"), FORM, False),         # another host
    (signed("http://127.0.0.1:8000/sms/status?key=k1"), FORM, False),             # the proxy's URL
])
def test_verify_twilio_checks_the_signature_against_the_public_url(tmp_path, twilio_stand_in, signature, form,
                                                                   valid):
    app = twilio_app(tmp_path, twilio_stand_in)
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    # As a reverse proxy forwards it: the Host is the internal one, never the public URL.
    with app.test_request_context("/sms/status?key=k1", method="POST", data=form, headers=headers,
                                  base_url="http://127.0.0.1:8000"):
        assert verify_twilio(request) is valid


def test_verify_twilio_refuses_everything_when_twilio_is_not_configured(tmp_path):
    app = make_channel_app(tmp_path, PUBLIC_URL=PUBLIC_URL)
    with app.test_request_context("/sms/status", method="POST", data=FORM,
                                  headers={"X-Twilio-Signature": signed(f"{PUBLIC_URL}/sms/status", token="")}):
        assert verify_twilio(request) is False


# --------------------------------------------------------------------------------------------
# The file channel: what would be sent, once per key
# --------------------------------------------------------------------------------------------

def outbox_files(app):
    return sorted(os.listdir(app.config["OUTBOX_DIR"]))


def test_the_file_channel_writes_a_parseable_eml_once_per_key(tmp_path):
    app = make_channel_app(tmp_path, MAIL_FROM=MAIL_FROM)
    sender = email_sender(app)
    provider_id = sender.send(email(7))
    app.config["CLOCK"] = lambda: NOW.replace(hour=15)  # a resend an hour later: still the same file
    assert sender.send(email(7)) == provider_id
    (name,) = [f for f in outbox_files(app) if not f.startswith(".")]
    assert provider_id == f"file:{name}" and name.startswith("20261205T143000Z-reminder_session_7_24h-")
    assert name.endswith(".eml")
    path = os.path.join(app.config["OUTBOX_DIR"], name)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, "rb") as file:
        mail = BytesParser(policy=default_policy).parse(file)
    assert (mail["To"], mail["From"], mail["Subject"]) == ("pat@example.net", MAIL_FROM, "Your appointment tomorrow")
    assert mail["Message-ID"].startswith("<reminder_session_7_24h-") and mail.get_content().strip() == f"{BODY} (7)"
    assert sender.send_many([email(7), email(8)])[0] == provider_id
    assert len([f for f in outbox_files(app) if f.endswith(".eml")]) == 2


def test_the_file_channel_writes_the_twilio_form_as_json_once_per_key(tmp_path):
    app = make_channel_app(tmp_path, TWILIO_FROM=CLINIC_NUMBER, PUBLIC_URL=PUBLIC_URL)
    sender = sms_sender(app)
    provider_id = sender.send(sms("reminder:session:42:24h"))
    assert sender.send(sms("reminder:session:42:24h")) == provider_id
    sender.send(sms("reminder:session:42:48h"))
    names = [f for f in outbox_files(app) if f.endswith(".json")]
    assert len(names) == 2 and provider_id == f"file:{names[1] if '24h' in names[1] else names[0]}"
    with open(os.path.join(app.config["OUTBOX_DIR"], provider_id.removeprefix("file:"))) as file:
        form = json.load(file)
    assert form == {"To": PATIENT_NUMBER, "From": CLINIC_NUMBER, "Body": BODY,
                    "StatusCallback": f"{PUBLIC_URL}/sms/status", "IdempotencyKey": "reminder:session:42:24h"}
    assert not [f for f in outbox_files(app) if f.endswith(".tmp")]

"""Real local servers for the channels: aiosmtpd on loopback (plain, STARTTLS, implicit TLS) and a
Twilio Messages stand-in. A test module takes the fixtures with
``from tests.messaging_servers import *  # noqa: F403`` (a star import, so ruff does not take the
fixture arguments for redefinitions) and any helper names explicitly.
"""
import base64
import json
import ssl
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.pg import free_port

__all__ = ["smtp_cert", "smtp_server", "smtp_starttls_server", "smtp_tls_server", "twilio_stand_in"]

SMTP_USER = "mailer"
SMTP_PASSWORD = "relay passphrase for tests"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list
    content: bytes
    #: (host, port) of the client: one value per SMTP connection.
    peer: tuple


class SmtpRecorder:
    """An aiosmtpd handler that keeps what it accepts and can be told to refuse.

    ``refuse[address] = "550 5.1.1 …"`` answers RCPT for that address with the reply;
    ``per_connection_limit = n`` answers MAIL with 421 (and smtplib hangs up) after n messages on
    one connection, as servers that cap a connection's messages do.
    """

    def __init__(self):
        self.messages = []
        self.refuse = {}
        self.per_connection_limit = None
        self._per_peer = Counter()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.per_connection_limit is not None and self._per_peer[session.peer] >= self.per_connection_limit:
            return "421 4.7.0 Too many messages on this connection"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self._per_peer[session.peer] += 1
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.peer))
        return "250 Message accepted for delivery"

    @property
    def connections(self):
        """How many SMTP connections delivered at least one message."""
        return len({message.peer for message in self.messages})


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: SmtpRecorder
    #: The PEM file a client trusts to verify the server (TLS servers only).
    ca_file: str | None = None


@dataclass(frozen=True)
class Cert:
    cert: str
    key: str


@pytest.fixture(scope="session")
def smtp_cert(tmp_path_factory):
    """A throwaway self-signed certificate for localhost and 127.0.0.1."""
    folder = tmp_path_factory.mktemp("smtp-cert")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return Cert(str(cert), str(key))


def _server_context(cert):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert, cert.key)
    return context


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


def _serve(**kwargs):
    handler = SmtpRecorder()
    # port=0 cannot work: start() probes the configured port (stack-next §4).
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller, handler


@pytest.fixture
def smtp_server():
    """Plain SMTP on loopback, no TLS, no login."""
    controller, handler = _serve()
    yield SmtpServer("127.0.0.1", controller.port, handler)
    controller.stop()


@pytest.fixture
def smtp_starttls_server(smtp_cert):
    """STARTTLS required, then AUTH as SMTP_USER / SMTP_PASSWORD required."""
    controller, handler = _serve(tls_context=_server_context(smtp_cert), require_starttls=True,
                                 auth_required=True, authenticator=_authenticate)
    yield SmtpServer("127.0.0.1", controller.port, handler, smtp_cert.cert)
    controller.stop()


@pytest.fixture
def smtp_tls_server(smtp_cert):
    """Implicit TLS (SMTPS, as on port 465)."""
    controller, handler = _serve(ssl_context=_server_context(smtp_cert))
    yield SmtpServer("127.0.0.1", controller.port, handler, smtp_cert.cert)
    controller.stop()


# --------------------------------------------------------------------------------------------
# Twilio Messages API stand-in
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Post:
    path: str
    #: Basic-auth user and password: the account SID and the auth token.
    user: str
    password: str
    form: dict


@dataclass
class TwilioStandIn:
    url: str
    posts: list = field(default_factory=list)
    #: (HTTP status, Twilio error code or None, message) to answer instead of 201.
    failure: tuple | None = None

    def fail(self, status, code=None, message="Unable to create record"):
        self.failure = (status, code, message)


class _MessagesHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        stand_in = self.server.stand_in
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        user, _, password = base64.b64decode(credentials).decode().partition(":") if scheme == "Basic" else ("", "", "")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = {name: values[0] for name, values in parse_qs(body).items()}
        stand_in.posts.append(Post(self.path, user, password, form))
        if stand_in.failure:
            status, code, message = stand_in.failure
            reply = {"code": code, "message": message, "status": status}
        else:
            status = 201
            account = self.path.split("/")[3]
            reply = {"sid": f"SM{len(stand_in.posts):032d}", "account_sid": account, "status": "queued",
                     "to": form.get("To"), "from": form.get("From"), "body": form.get("Body")}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def twilio_stand_in():
    """``/2010-04-01/Accounts/{sid}/Messages.json``: records each post, answers 201 with an SM sid."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MessagesHandler)
    server.stand_in = TwilioStandIn(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server.stand_in
    server.shutdown()
    server.server_close()
    thread.join()

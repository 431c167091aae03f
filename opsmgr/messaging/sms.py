"""SMS through the Twilio Messages API (the ``twilio`` 9.13 library), and Twilio's webhook signature.

The client is pointed at ``OPSMGR_TWILIO_API_BASE`` by the SDK's supported hook, an
``http_client`` that rewrites the scheme and host of each request (``region``/``edge`` only
rename the twilio.com host). Twilio takes no idempotency key for a Message: a resend after a
crash between "accepted" and "recorded" is a second text, which the delivery engine flags.

A 4xx reply refuses the message for good (21211 invalid number, 21610 the patient sent STOP),
except 401/403 (our credentials or account settings: fixing them delivers the queue) and 429
(rate limit); 5xx, timeouts and network errors are retried.
"""
import logging
from urllib.parse import urlsplit

from flask import current_app
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from opsmgr.messaging.channels import DeliveryError, status_callback

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
TIMEOUT = 30  # seconds
SIGNATURE_HEADER = "X-Twilio-Signature"
_RETRYABLE_4XX = {401, 403, 408, 429}


class ApiBaseHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending to ``api_base`` instead of https://api.twilio.com."""

    def __init__(self, api_base=TWILIO_API, timeout=TIMEOUT):
        super().__init__(timeout=timeout)
        self.api_base = urlsplit(api_base.rstrip("/"))

    def request(self, method, url, *args, **kwargs):
        url = urlsplit(url)._replace(scheme=self.api_base.scheme, netloc=self.api_base.netloc).geturl()
        return super().request(method, url, *args, **kwargs)

    # The SDK logs each request's headers and response at INFO; ours says only what and how it went.
    def log_request(self, kwargs):
        log.debug("Twilio %s %s", kwargs["method"], urlsplit(kwargs["url"]).path)

    def log_response(self, status_code, response):
        log.debug("Twilio answered %s", status_code)


class TwilioSender:
    def __init__(self, config):
        self.config = config
        self.client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
                             http_client=ApiBaseHttpClient(config.get("TWILIO_API_BASE") or TWILIO_API))
        service = config.get("TWILIO_MESSAGING_SERVICE_SID")
        self.sender = {"messaging_service_sid": service} if service else {"from_": config.get("TWILIO_FROM")}

    def send(self, msg):
        """Post one Message; returns its SID (``SM…``) or raises DeliveryError."""
        callback = status_callback(msg, self.config)
        extra = {"status_callback": callback} if callback else {}
        try:
            message = self.client.messages.create(to=msg.to, body=msg.body, **self.sender, **extra)
        except TwilioRestException as error:
            raise _rest_error(error) from None
        except (OSError, TwilioException) as error:  # requests' errors are OSErrors
            raise DeliveryError(f"Twilio unreachable: {type(error).__name__}", permanent=False) from None
        log.info("Twilio accepted message %s", message.sid)
        return message.sid


def _rest_error(error):
    status = error.status
    permanent = 400 <= status < 500 and status not in _RETRYABLE_4XX
    code = f", error {error.code}" if error.code else ""
    return DeliveryError(f"Twilio refused the message: HTTP {status}{code}", permanent=permanent,
                         code=error.code or status)


def twilio_url(request):
    """The URL Twilio signed: OPSMGR_PUBLIC_URL + path + query, never the Host header.

    Behind a reverse proxy ``request.url`` is whatever the proxy forwarded (``http://127.0.0.1…``
    without ProxyFix), so every genuine callback would fail; the configured public URL is what
    Twilio was given, and a request signed for any other host fails.
    """
    url = current_app.config["PUBLIC_URL"].rstrip("/") + request.path
    return f"{url}?{request.query_string.decode('latin-1')}" if request.query_string else url


def verify_twilio(request):
    """True only for a request carrying a valid X-Twilio-Signature for our public URL and its form."""
    config = current_app.config
    signature = request.headers.get(SIGNATURE_HEADER)
    if not (signature and config.get("TWILIO_AUTH_TOKEN") and config.get("PUBLIC_URL")):
        return False
    params = request.form if request.method == "POST" else {}
    return RequestValidator(config["TWILIO_AUTH_TOKEN"]).validate(twilio_url(request), params, signature)

"""Configuration read from the environment. Every variable is documented in README.md."""
import os
import secrets
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _report_page_size(env):
    value = env.get("OPSMGR_REPORT_PAGE_SIZE", "A4").strip()
    if value.upper() not in {"A4", "LETTER"}:
        raise ValueError(f"OPSMGR_REPORT_PAGE_SIZE must be A4 or Letter, not {value!r}")
    return value.upper()


def _flag(env, name, default="0"):
    return env.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def _minutes(env, name, default):
    return timedelta(minutes=int(env.get(name, default)))


def _machine_timezone():
    from tzlocal import get_localzone_name

    return get_localzone_name() or "UTC"


def _phone_region(env):
    """The region phone numbers without a country code are read in; refused at start-up when unknown."""
    import phonenumbers

    region = env.get("OPSMGR_PHONE_REGION", "US").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"OPSMGR_PHONE_REGION={region!r} is not a region code such as US, CA or GB.")
    return region


def read_or_create_secret(instance_path, filename):
    """A random secret kept in instance/ with mode 600, created on first use; never a fixed default."""
    path = Path(instance_path) / filename
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        return value


#: OPSMGR_SMTP_SECURITY → the port used when OPSMGR_SMTP_PORT is not set.
SMTP_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def _messaging(env, instance_path):
    """SMTP, Twilio and the outbox folder. A half-configured channel stops the start, not a 3 a.m. send."""
    security = env.get("OPSMGR_SMTP_SECURITY", "starttls").strip().lower()
    if security not in SMTP_DEFAULT_PORTS:
        raise ValueError(f"OPSMGR_SMTP_SECURITY must be starttls, tls or none, not {security!r}")
    settings = {
        "SMTP_HOST": env.get("OPSMGR_SMTP_HOST") or None,
        "SMTP_PORT": int(env.get("OPSMGR_SMTP_PORT") or SMTP_DEFAULT_PORTS[security]),
        "SMTP_SECURITY": security,
        "SMTP_USER": env.get("OPSMGR_SMTP_USER") or None,
        "SMTP_PASSWORD": env.get("OPSMGR_SMTP_PASSWORD") or None,
        "SMTP_CA_FILE": env.get("OPSMGR_SMTP_CA_FILE") or None,
        "MAIL_FROM": env.get("OPSMGR_MAIL_FROM") or None,
        "TWILIO_ACCOUNT_SID": env.get("OPSMGR_TWILIO_ACCOUNT_SID") or None,
        "TWILIO_AUTH_TOKEN": env.get("OPSMGR_TWILIO_AUTH_TOKEN") or None,
        "TWILIO_FROM": env.get("OPSMGR_TWILIO_FROM") or None,
        "TWILIO_MESSAGING_SERVICE_SID": env.get("OPSMGR_TWILIO_MESSAGING_SERVICE_SID") or None,
        "TWILIO_API_BASE": (env.get("OPSMGR_TWILIO_API_BASE") or "https://api.twilio.com").rstrip("/"),
        "PUBLIC_URL": (env.get("OPSMGR_PUBLIC_URL") or "").rstrip("/") or None,
        "OUTBOX_DIR": env.get("OPSMGR_OUTBOX_DIR") or str(Path(instance_path) / "outbox"),
    }
    problems = []
    if settings["SMTP_HOST"] and not settings["MAIL_FROM"]:
        problems.append("OPSMGR_SMTP_HOST needs OPSMGR_MAIL_FROM")
    if settings["SMTP_USER"] and security == "none":
        problems.append("OPSMGR_SMTP_USER with OPSMGR_SMTP_SECURITY=none would send the password in clear")
    if settings["TWILIO_ACCOUNT_SID"]:
        if not settings["TWILIO_AUTH_TOKEN"]:
            problems.append("OPSMGR_TWILIO_ACCOUNT_SID needs OPSMGR_TWILIO_AUTH_TOKEN")
        if not (settings["TWILIO_FROM"] or settings["TWILIO_MESSAGING_SERVICE_SID"]):
            problems.append("OPSMGR_TWILIO_ACCOUNT_SID needs OPSMGR_TWILIO_FROM or OPSMGR_TWILIO_MESSAGING_SERVICE_SID")
        if not (settings["PUBLIC_URL"] or "").startswith("https://"):
            problems.append("OPSMGR_TWILIO_ACCOUNT_SID needs OPSMGR_PUBLIC_URL, an https:// URL Twilio can call back")
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def _roles(env, name, default):
    roles = frozenset(role.strip().lower() for role in env.get(name, default).split(",") if role.strip())
    unknown = roles - {"nurse", "coordinator", "physician", "admin"}
    if unknown:
        raise ValueError(f"{name} names unknown roles: {', '.join(sorted(unknown))}")
    return roles


class Config:
    """Production configuration; values come from OPSMGR_* environment variables."""

    TESTING = False
    DEBUG = False

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.INSTANCE_PATH = env.get("OPSMGR_INSTANCE_PATH", str(ROOT / "instance"))
        self.SQLALCHEMY_DATABASE_URI = env.get(
            "OPSMGR_DATABASE_URL", f"sqlite:///{Path(self.INSTANCE_PATH) / 'opsmgr.sqlite3'}"
        )
        self.SECRET_KEY = env.get("OPSMGR_SECRET_KEY") or read_or_create_secret(
            self.INSTANCE_PATH, "secret_key"
        )
        self.AUDIT_KEY = env.get("OPSMGR_AUDIT_KEY") or read_or_create_secret(
            self.INSTANCE_PATH, "audit_key"
        )
        self.CLINIC_TIMEZONE = env.get("OPSMGR_TIMEZONE") or _machine_timezone()
        #: True when OPSMGR_TIMEZONE is unset and the zone is this machine's: admins and `flask serve` say so.
        self.CLINIC_TIMEZONE_FROM_MACHINE = not env.get("OPSMGR_TIMEZONE")
        self.CLINIC_NAME = env.get("OPSMGR_CLINIC_NAME", "Infusion clinic")
        #: The number patients call, as reminders print it (free text, e.g. "(503) 555-0100").
        self.CLINIC_PHONE = env.get("OPSMGR_CLINIC_PHONE", "")
        self.PHONE_REGION = _phone_region(env)
        self.HTTPS = _flag(env, "OPSMGR_HTTPS")
        self.IDLE_TIMEOUT = _minutes(env, "OPSMGR_IDLE_MINUTES", "15")
        self.ABSOLUTE_TIMEOUT = _minutes(env, "OPSMGR_ABSOLUTE_MINUTES", str(12 * 60))
        #: On an enrolled chair tablet, idle locks the screen (PIN to resume) after this, instead of signing out.
        self.TABLET_LOCK_TIMEOUT = _minutes(env, "OPSMGR_TABLET_LOCK_MINUTES", "5")
        #: A clinician who breaks the glass on a restricted record sees it for this long (then again, with a reason).
        self.BREAK_GLASS_TIMEOUT = _minutes(env, "OPSMGR_BREAK_GLASS_MINUTES", "60")
        #: Failed sign-ins one client address may make per window before it is refused without a check.
        self.SIGN_IN_ADDRESS_LIMIT = int(env.get("OPSMGR_SIGN_IN_ADDRESS_LIMIT", "20"))
        self.SIGN_IN_ADDRESS_WINDOW = _minutes(env, "OPSMGR_SIGN_IN_ADDRESS_MINUTES", "15")
        #: Roles that must sign in with two factors until an admin sets a policy for the role (/admin/two-factor).
        self.TWO_FACTOR_REQUIRED_ROLES = _roles(env, "OPSMGR_TWO_FACTOR_REQUIRED_ROLES", "physician,admin")
        self.TRUSTED_PROXIES = int(env.get("OPSMGR_TRUSTED_PROXIES", "0"))
        self.LOG_LEVEL = env.get("OPSMGR_LOG_LEVEL", "INFO")
        #: PDF reports' paper: A4 or Letter.
        self.REPORT_PAGE_SIZE = _report_page_size(env)
        #: A PKCS#12 file from the clinic's CA that signs report PDFs; unset: a key generated into instance/.
        self.SIGNING_P12 = env.get("OPSMGR_SIGNING_P12") or None
        self.SIGNING_P12_PASSWORD = env.get("OPSMGR_SIGNING_P12_PASSWORD") or None
        if self.SIGNING_P12 and not Path(self.SIGNING_P12).is_file():
            raise ValueError(f"OPSMGR_SIGNING_P12={self.SIGNING_P12!r} is not a file")
        for name, value in _messaging(env, self.INSTANCE_PATH).items():
            setattr(self, name, value)
        self.SESSION_COOKIE_NAME = "__Host-opsmgr" if self.HTTPS else "opsmgr"
        self.SESSION_COOKIE_SECURE = self.HTTPS
        #: The long-lived cookie that marks an enrolled chair tablet (HttpOnly, SameSite=Lax, Secure with HTTPS).
        self.TABLET_COOKIE_NAME = "__Host-opsmgr-tablet" if self.HTTPS else "opsmgr-tablet"
        self.PERMANENT_SESSION_LIFETIME = self.ABSOLUTE_TIMEOUT
        self.WTF_CSRF_TIME_LIMIT = int(self.ABSOLUTE_TIMEOUT.total_seconds())

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_PATH = "/"
    SESSION_REFRESH_EACH_REQUEST = False
    WTF_CSRF_ENABLED = True
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    #: argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4); above ASVS 5.0 appendix C.
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 64 * 1024
    ARGON2_PARALLELISM = 4
    LOCKOUT_THRESHOLD = 5
    LOCKOUT_DURATION = timedelta(minutes=15)
    PASSWORD_MIN_LENGTH = 12
    AUDIT_PAGE_SIZE = 50


class TestConfig(Config):
    """Tests: cheap argon2 parameters; only the given settings, never the caller's environment."""

    __test__ = False  # not a pytest test class
    TESTING = True
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 64
    ARGON2_PARALLELISM = 1

    def __init__(self, database_url, instance_path, **overrides):
        super().__init__(
            {
                "OPSMGR_DATABASE_URL": database_url,
                "OPSMGR_INSTANCE_PATH": str(instance_path),
                "OPSMGR_TIMEZONE": "America/New_York",
                "OPSMGR_SECRET_KEY": "test-secret-key-not-for-production",
                "OPSMGR_AUDIT_KEY": "test-audit-key-not-for-production",
                # Sign-ins through the form go straight in; tests of two-factor set the policy themselves.
                "OPSMGR_TWO_FACTOR_REQUIRED_ROLES": "",
            }
        )
        for key, value in overrides.items():
            setattr(self, key, value)

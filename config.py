"""Configuration read from the environment. Every variable is documented in README.md."""
import os
import secrets
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _flag(env, name, default="0"):
    return env.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def _minutes(env, name, default):
    return timedelta(minutes=int(env.get(name, default)))


def _machine_timezone():
    from tzlocal import get_localzone_name

    return get_localzone_name() or "UTC"


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
        self.CLINIC_NAME = env.get("OPSMGR_CLINIC_NAME", "Infusion clinic")
        self.HTTPS = _flag(env, "OPSMGR_HTTPS")
        self.IDLE_TIMEOUT = _minutes(env, "OPSMGR_IDLE_MINUTES", "15")
        self.ABSOLUTE_TIMEOUT = _minutes(env, "OPSMGR_ABSOLUTE_MINUTES", str(12 * 60))
        self.TRUSTED_PROXIES = int(env.get("OPSMGR_TRUSTED_PROXIES", "0"))
        self.LOG_LEVEL = env.get("OPSMGR_LOG_LEVEL", "INFO")
        self.SESSION_COOKIE_NAME = "__Host-opsmgr" if self.HTTPS else "opsmgr"
        self.SESSION_COOKIE_SECURE = self.HTTPS
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
            }
        )
        for key, value in overrides.items():
            setattr(self, key, value)

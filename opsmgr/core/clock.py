"""The one source of 'now'. Tests replace it through ``app.config["CLOCK"]``."""
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def system_now():
    return datetime.now(UTC)


def utcnow():
    """The current time, timezone-aware UTC."""
    clock = current_app.config.get("CLOCK") or system_now
    return clock()


def clinic_zone():
    return ZoneInfo(current_app.config["CLINIC_TIMEZONE"])

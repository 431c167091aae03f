"""Template filters and globals: clinic-time formatting and the permission predicates."""
from datetime import datetime
from decimal import Decimal

from flask import current_app

from opsmgr import permissions
from opsmgr.core.clock import clinic_zone
from opsmgr.core.contact import phone_filter
from opsmgr.core.guard import setup_step_pending
from opsmgr.core.submissions import new_key
from opsmgr.rules.monitoring import ALERT_TITLES


def clinic_time(value, fmt="%Y-%m-%d %H:%M"):
    """A UTC datetime shown in the clinic's time zone."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return str(value)
    return value.astimezone(clinic_zone()).strftime(fmt)


def amount(value):
    """A Decimal as a person writes it: 0.500 → 0.5, 40 → 40; None → —."""
    if value is None:
        return "—"
    return format(Decimal(value).normalize(), "f")


def alert_title(code):
    """An in-chair alert's heading in words (its code is shown only for support)."""
    return ALERT_TITLES.get(code, "Alert")


def register(app):
    app.jinja_env.filters["clinic_time"] = clinic_time
    app.jinja_env.filters["phone"] = phone_filter
    app.jinja_env.filters["alert_title"] = alert_title
    app.jinja_env.globals.update(permissions.ALL)
    app.jinja_env.globals["amount"] = amount
    app.jinja_env.globals["submission_key"] = new_key
    app.jinja_env.globals["setup_step_pending"] = setup_step_pending

    @app.context_processor
    def clinic_context():
        return {
            "clinic_timezone": current_app.config["CLINIC_TIMEZONE"],
            "clinic_name": current_app.config["CLINIC_NAME"],
        }

"""Template filters and globals: clinic-time formatting and the permission predicates."""
from datetime import datetime

from flask import current_app

from opsmgr import permissions
from opsmgr.core.clock import clinic_zone


def clinic_time(value, fmt="%Y-%m-%d %H:%M"):
    """A UTC datetime shown in the clinic's time zone."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return str(value)
    return value.astimezone(clinic_zone()).strftime(fmt)


def register(app):
    app.jinja_env.filters["clinic_time"] = clinic_time
    app.jinja_env.globals.update(permissions.ALL)

    @app.context_processor
    def clinic_context():
        return {
            "clinic_timezone": current_app.config["CLINIC_TIMEZONE"],
            "clinic_name": current_app.config["CLINIC_NAME"],
        }

"""opsmgr: the infusion session operations manager."""
import logging
from pathlib import Path

from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config
from opsmgr.core.flaskapp import DEBUG_REFUSED, OpsmgrFlask
from opsmgr.extensions import csrf, db, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(config=None):
    """Build the application; this only wires the parts together."""
    config = config or Config()
    app = OpsmgrFlask(__name__, instance_path=config.INSTANCE_PATH, template_folder=str(ROOT / "templates"))
    app.config.from_object(config)
    # instance/ holds the SQLite database and keys: only the service account may enter it.
    Path(app.instance_path).mkdir(mode=0o700, parents=True, exist_ok=True)
    if app.debug:
        raise RuntimeError(DEBUG_REFUSED)
    if not app.config.get("WTF_CSRF_ENABLED", True) or not app.config.get("WTF_CSRF_CHECK_DEFAULT", True):
        raise RuntimeError("opsmgr never runs without CSRF protection on every form (WTF_CSRF_ENABLED)")
    register_logging(app)
    register_extensions(app)
    register_routing(app)
    register_blueprints(app)
    register_request_hooks(app)
    register_errors(app)
    register_cli(app)
    register_template_helpers(app)
    return app


def register_logging(app):
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # WeasyPrint and fontTools narrate every render at INFO; only their warnings and errors are worth a line.
    for noisy in ("weasyprint", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def register_extensions(app):
    from opsmgr.core import flashes
    from opsmgr.core.db import render_migration_item  # also installs the SQLite connection settings
    from opsmgr.followups import service  # noqa: F401 - re-plans follow-ups and reminders before each commit
    from opsmgr.models import import_all
    from opsmgr.sessions import lock  # noqa: F401 - installs the signed-session guard on every ORM flush

    import_all()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True,
                    render_item=render_migration_item)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = None  # server-side sessions do the real work; see auth.service
    flashes.init_app(app)  # flashed messages wait on the server, never in the session cookie
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)


def register_routing(app):
    from opsmgr.core.routing import register

    register(app)  # `<int:id>` is 1 to 2**31 - 1: a larger id is a 404, never a database overflow


def register_blueprints(app):
    from opsmgr.admin.tablet_views import bp as tablets_bp
    from opsmgr.admin.views import bp as admin_bp
    from opsmgr.audit.views import bp as audit_bp
    from opsmgr.auth.views import bp as auth_bp
    from opsmgr.checklist.views import bp as checklist_bp
    from opsmgr.clinic.views import bp as clinic_bp
    from opsmgr.core.views import bp as core_bp
    from opsmgr.exports.views import bp as exports_bp
    from opsmgr.feeds.views import bp as feeds_bp
    from opsmgr.followups.views import bp as followups_bp
    from opsmgr.infusion.views import bp as infusion_bp
    from opsmgr.messaging.admin_views import bp as message_templates_bp
    from opsmgr.messaging.views import bp as messaging_bp
    from opsmgr.notes.views import bp as notes_bp
    from opsmgr.patients.views import bp as patients_bp
    from opsmgr.policy.views import bp as policy_bp
    from opsmgr.reports.outcome_views import bp as outcomes_bp
    from opsmgr.reports.views import bp as reports_bp
    from opsmgr.restricted.views import bp as restricted_bp
    from opsmgr.schedule.views import bp as schedule_bp
    from opsmgr.series.views import bp as series_bp
    from opsmgr.tasks.views import bp as tasks_bp
    from opsmgr.twofactor.views import bp as two_factor_bp
    from opsmgr.worklists.views import bp as worklists_bp

    for blueprint in (core_bp, auth_bp, admin_bp, tablets_bp, audit_bp, clinic_bp, patients_bp, series_bp, schedule_bp,
                      worklists_bp, followups_bp, feeds_bp, policy_bp, checklist_bp, infusion_bp, tasks_bp, notes_bp,
                      messaging_bp, message_templates_bp, reports_bp, outcomes_bp, exports_bp, restricted_bp,
                      two_factor_bp):
        app.register_blueprint(blueprint)
    from opsmgr.restricted.access import check_routes

    check_routes(app)  # every URL argument resolves to a patient, or is declared not to


def register_request_hooks(app):
    from opsmgr.auth.views import load_staff_session
    from opsmgr.core import reads
    from opsmgr.core.guard import enforce_access
    from opsmgr.core.submissions import claim_or_replay
    from opsmgr.core.web import set_security_headers, unauthorized
    from opsmgr.restricted import access as restricted

    login_manager.unauthorized_handler(unauthorized)
    app.before_request(reads.start)  # first: a GET reads first and writes its audit rows last
    app.after_request(reads.finish)  # registered first, so it runs last, after the page is built
    app.teardown_request(reads.forget)
    app.before_request(load_staff_session)
    app.before_request(enforce_access)
    app.before_request(restricted.enforce)  # a restricted patient's record: its care team, or break-glass
    app.before_request(claim_or_replay)  # after the guard: only a permitted post claims or replays a key
    app.after_request(set_security_headers)


def register_errors(app):
    from opsmgr.core.errors import register_errors as register

    register(app)


def register_cli(app):
    from opsmgr.cli import register

    register(app)


def register_template_helpers(app):
    from opsmgr.core.templating import register

    register(app)

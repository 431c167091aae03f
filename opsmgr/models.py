"""Imports every model module so SQLAlchemy and Alembic see the whole schema."""


def import_all():
    import opsmgr.audit.models  # noqa: F401
    import opsmgr.auth.models  # noqa: F401
    import opsmgr.checklist.models  # noqa: F401
    import opsmgr.core.flashes  # noqa: F401
    import opsmgr.core.submissions  # noqa: F401
    import opsmgr.feeds.models  # noqa: F401
    import opsmgr.followups.models  # noqa: F401
    import opsmgr.gates.models  # noqa: F401
    import opsmgr.infusion.models  # noqa: F401
    import opsmgr.messaging.models  # noqa: F401
    import opsmgr.notes.models  # noqa: F401
    import opsmgr.outbox.models  # noqa: F401
    import opsmgr.patients.models  # noqa: F401
    import opsmgr.policy.models  # noqa: F401
    import opsmgr.reports.models  # noqa: F401
    import opsmgr.restricted.models  # noqa: F401
    import opsmgr.schedule.models  # noqa: F401
    import opsmgr.scores.models  # noqa: F401
    import opsmgr.series.models  # noqa: F401
    import opsmgr.sessions.models  # noqa: F401
    import opsmgr.tasks.models  # noqa: F401
    import opsmgr.twofactor.models  # noqa: F401

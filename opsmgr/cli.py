"""Registers every command group with the app."""


def register(app):
    from opsmgr.audit.cli import audit
    from opsmgr.auth.cli import users
    from opsmgr.backup.cli import backup, restore
    from opsmgr.core.cli import scheduler, serve
    from opsmgr.demo.cli import demo
    from opsmgr.demo.seed_cli import seed
    from opsmgr.exports.cli import export
    from opsmgr.outbox.cli import reminders
    from opsmgr.reports.cli import reports

    for command in (users, audit, demo, seed, scheduler, serve, reminders, reports, backup, restore, export):
        app.cli.add_command(command)

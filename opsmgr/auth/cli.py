"""`flask users …`: create, list and deactivate staff accounts from the shell."""
import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from opsmgr.audit.service import Actor
from opsmgr.auth import service
from opsmgr.auth.models import ROLE_VALUES, StaffUser
from opsmgr.core.clock import utcnow
from opsmgr.extensions import db
from opsmgr.twofactor.service import reset_by_admin

users = AppGroup("users", help="Manage staff accounts.")
CLI_ACTOR = Actor(user_id=None, username="cli", role=None, ip=None)


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLE_VALUES), required=True)
@click.option("--full-name", default=None, help="Defaults to the username.")
@click.option("--credentials", default="", help="e.g. MD, RN")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create(username, role, full_name, credentials, password_stdin):
    """Create a staff account; the password is prompted for (or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = service.create_staff(username=username, full_name=full_name or username, role=role,
                                    credentials=credentials, password=password, actor=CLI_ACTOR, now=utcnow())
    except service.AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Created {user.username} ({user.role}).")


@users.command("list")
def list_users():
    """List staff accounts."""
    for user in db.session.scalars(select(StaffUser).order_by(StaffUser.username)):
        state = "active" if user.is_active_account else "deactivated"
        click.echo(f"{user.username:20} {user.role:12} {state:12} {user.full_name}")


def _account(username):
    user = service.find_user(username)
    if user is None:
        raise click.ClickException(f"No account named {username!r}.")
    return user


@users.command("deactivate")
@click.argument("username")
def deactivate(username):
    """Deactivate an account and end all its sessions."""
    user = _account(username)
    service.deactivate(user, actor=CLI_ACTOR, now=utcnow())
    db.session.commit()
    click.echo(f"Deactivated {user.username}; all sessions ended.")


@users.command("reset-two-factor")
@click.argument("username")
def reset_two_factor(username):
    """Clear an account's second factor (a lost phone and no admin left to do it); its sessions end."""
    user = _account(username)
    reset_by_admin(user, actor=CLI_ACTOR, now=utcnow())
    db.session.commit()
    click.echo(f"Two-factor sign-in reset for {user.username}; all sessions ended. They set it up again at sign-in.")

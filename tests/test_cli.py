"""Command-line tools: users, demo seed."""
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from opsmgr.auth.models import StaffUser
from opsmgr.extensions import db


def test_users_create_reads_the_password_from_stdin_then_the_user_can_sign_in(app, runner):
    result = runner.invoke(args=["users", "create", "dr.ames", "--role", "physician", "--full-name", "Dr Ames",
                                 "--credentials", "MD", "--password-stdin"], input="a physician passphrase\n")
    assert result.exit_code == 0, result.output
    assert app.test_client().login("dr.ames", "a physician passphrase").status_code == 302


def test_users_create_prompts_for_the_password_twice(app, runner):
    result = runner.invoke(args=["users", "create", "prompted", "--role", "nurse"],
                           input="a prompted passphrase\na prompted passphrase\n")
    assert result.exit_code == 0, result.output
    assert app.test_client().login("prompted", "a prompted passphrase").status_code == 302


def test_users_create_refuses_a_weak_password_and_a_duplicate(runner):
    weak = runner.invoke(args=["users", "create", "x1", "--role", "nurse", "--password-stdin"], input="short\n")
    assert weak.exit_code != 0 and "at least 12 characters" in weak.output
    runner.invoke(args=["users", "create", "x1", "--role", "nurse", "--password-stdin"], input="good passphrase 1\n")
    again = runner.invoke(args=["users", "create", "x1", "--role", "nurse", "--password-stdin"],
                          input="good passphrase 1\n")
    assert again.exit_code != 0 and "already taken" in again.output


def test_users_list_and_deactivate(app, runner, make_user):
    user = make_user("coordinator", username="cora")
    listing = runner.invoke(args=["users", "list"])
    assert "cora" in listing.output and "coordinator" in listing.output and "active" in listing.output
    result = runner.invoke(args=["users", "deactivate", "cora"])
    assert result.exit_code == 0
    with app.app_context():
        assert db.session.get(StaffUser, user.id).is_active_account is False
    assert runner.invoke(args=["users", "deactivate", "nobody"]).exit_code != 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the command's behaviour, not the database
def test_demo_seed_creates_four_accounts_once_with_a_private_credentials_file(app, runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    path = os.path.join(app.instance_path, "demo-credentials.txt")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = [line.split("\t") for line in Path(path).read_text().splitlines() if not line.startswith("#")]
    assert [name for name, _ in lines] == ["nurse", "coordinator", "physician", "admin"]
    assert len({password for _, password in lines}) == 4, "random per account"
    for name, password in lines:
        assert password in result.output
        assert app.test_client().login(name, password).status_code == 302
    again = runner.invoke(args=["demo", "seed"]).output
    # The second run says where the passwords are kept, never the passwords (its output may be logged).
    assert "skipped" in again and f"The demo accounts' passwords are in {path} " in again
    assert not any(password in again for _, password in lines)
    with app.app_context():
        assert len(db.session.scalars(select(StaffUser)).all()) == 4


def test_serve_says_the_clinic_time_zone_and_where_it_came_from():
    from opsmgr.core.cli import timezone_line

    machine = timezone_line({"CLINIC_TIMEZONE": "Europe/Berlin", "CLINIC_TIMEZONE_FROM_MACHINE": True})
    assert "Clinic time zone: Europe/Berlin, this machine's, as OPSMGR_TIMEZONE is not set." in machine
    assert "set OPSMGR_TIMEZONE" in machine
    chosen = timezone_line({"CLINIC_TIMEZONE": "America/New_York", "CLINIC_TIMEZONE_FROM_MACHINE": False})
    assert chosen == "Clinic time zone: America/New_York (OPSMGR_TIMEZONE)."


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the command's behaviour, not the database
def test_demo_password_comes_from_the_environment(app, runner, monkeypatch):
    monkeypatch.setenv("OPSMGR_DEMO_PASSWORD", "scripted demo passphrase")
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    assert app.test_client().login("nurse", "scripted demo passphrase").status_code == 302


def test_a_new_instance_folder_is_private(tmp_path):
    from config import TestConfig
    from opsmgr import create_app

    folder = tmp_path / "fresh-instance"
    create_app(TestConfig(f"sqlite:///{tmp_path / 'x.sqlite3'}", folder))
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700

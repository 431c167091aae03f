"""`flask serve` (gunicorn plus the one scheduler) and `flask scheduler run`."""
import contextlib
import os
import re
import signal
import subprocess
import sys
from datetime import date

import click
from flask import current_app
from flask.cli import AppGroup

from opsmgr.core.scheduler import SchedulerAlreadyRunning, run_scheduler

scheduler = AppGroup("scheduler", help="The background job process.")

#: gunicorn's access log without query strings: search terms must never reach a log file.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def iso_date(_ctx, _param, value):
    """A click callback for a date option: YYYY-MM-DD (None when the option is not given)."""
    if value is None:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise click.BadParameter(f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-01-31.")


@scheduler.command("run")
def scheduler_run():
    """Run the scheduler in the foreground (exactly one per deployment)."""
    try:
        run_scheduler(current_app._get_current_object())
    except SchedulerAlreadyRunning as error:
        raise click.ClickException(f"Scheduler not started: {error}.") from None


def timezone_line(config):
    """The clinic's time zone as `flask serve` says it: where it came from and, from the machine, how to change it."""
    if config.get("CLINIC_TIMEZONE_FROM_MACHINE"):
        return (f"Clinic time zone: {config['CLINIC_TIMEZONE']}, this machine's, as OPSMGR_TIMEZONE is not set. "
                "Every session time, reminder and report uses it: set OPSMGR_TIMEZONE if the clinic is elsewhere.")
    return f"Clinic time zone: {config['CLINIC_TIMEZONE']} (OPSMGR_TIMEZONE)."


#: Signals that stop `flask serve` and both its children, like Ctrl-C (SIGINT).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """A stop signal arrived: leave the wait loop and stop the children."""


def _stop(signum, frame):
    raise Stopped(signal.Signals(signum).name)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), show_default="PORT or 5000")
@click.option("--workers", default=2, show_default=True)
def serve(host, port, workers):
    """Serve with gunicorn and start the scheduler beside it; Ctrl-C, SIGTERM or SIGHUP stops both."""
    # SIGTERM (systemd, docker stop, kill) and SIGHUP (the terminal closed) stop both children as Ctrl-C does;
    # otherwise gunicorn and the scheduler would run on, orphaned. Installed before either child starts.
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop)
    python, children = sys.executable, []
    try:
        children.append(subprocess.Popen([  # noqa: S603 - a fixed command line, no user input
            python, "-m", "gunicorn", "app:app", "--bind", f"{host}:{port}", "--workers", str(workers),
            "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT, "--timeout", "60",
            "--no-control-socket",  # gunicorn 27's admin socket: one per user (~/.gunicorn), unused here
        ]))
        children.append(subprocess.Popen(  # noqa: S603 - a fixed command line
            [python, "-m", "flask", "--app", "app", "scheduler", "run"]))
        click.echo(f"opsmgr on http://{host}:{port}  (Ctrl-C stops the server and the scheduler)")
        from_machine = current_app.config.get("CLINIC_TIMEZONE_FROM_MACHINE")
        click.secho(timezone_line(current_app.config), fg="yellow" if from_machine else None, bold=from_machine)
        while all(child.poll() is None for child in children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                children[0].wait(timeout=1)
    except (KeyboardInterrupt, Stopped):
        pass
    finally:
        for signum in STOP_SIGNALS:  # a second signal must not cut the shutdown short
            signal.signal(signum, signal.SIG_IGN)
        _stop_children(children)
    failed = [child.returncode for child in children if child.returncode not in (0, -signal.SIGTERM, None)]
    if failed:
        raise SystemExit(1)


def _stop_children(children):
    """SIGTERM each child still running, then wait for it (15 s, then SIGKILL)."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

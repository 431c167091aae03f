"""`flask seed scale --patients N`: the scale data set (opsmgr.demo.scale), with a progress bar."""
import click
from flask.cli import AppGroup

from opsmgr.audit.service import record
from opsmgr.core.clock import utcnow
from opsmgr.demo import service
from opsmgr.demo.scale import ScaleSeed, refusal
from opsmgr.extensions import db

seed = AppGroup("seed", help="Fictional data sets for trying out and measuring opsmgr.")


@seed.command("scale")
@click.option("--patients", type=click.IntRange(min=1), required=True, help="How many fictional patients.")
@click.option("--random-seed", type=int, default=2026, show_default=True, help="The same seed gives the same data.")
def scale(patients, random_seed):
    """A clinic chain's fictional data: sessions over several years, readings, signed notes, audit trail.

    Refuses a database that has real (non-demo) staff accounts. Commits batch by batch."""
    problem = refusal()
    if problem:
        raise click.ClickException(problem)
    now = utcnow()
    run = ScaleSeed(patients, now=now, random_seed=random_seed)
    with click.progressbar(length=run.total, label=f"Seeding {patients} fictional patients") as bar:
        for written in run.batches():
            db.session.commit()
            bar.update(written)
    record("demo.scale_seeded", actor=service.DEMO_ACTOR, now=now, details=run.counts)
    db.session.commit()
    click.echo("Scale data set created (all fictional): " +
               ", ".join(f"{count} {table}" for table, count in run.counts.items()) + ".")

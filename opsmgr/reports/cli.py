"""`flask reports …`: report tools for the admin."""
import click
from flask import current_app
from flask.cli import AppGroup

from opsmgr.reports.signing import SigningKeyError, signing_identity

reports = AppGroup("reports", help="PDF report tools.")


@reports.command("signing-key")
@click.option("--pem", is_flag=True, help="Print only the certificate as PEM (to give to PDF readers to trust).")
def signing_key(pem):
    """Show the certificate that signs report PDFs; creates the per-install key on first use."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import load_der_x509_certificate

    try:
        identity = signing_identity(current_app._get_current_object())
    except SigningKeyError as error:
        raise click.ClickException(str(error)) from None
    cert = identity.certificate
    if pem:
        click.echo(load_der_x509_certificate(cert.dump()).public_bytes(Encoding.PEM).decode(), nl=False)
        return
    click.echo(f"Key:         {identity.source}")
    click.echo(f"Subject:     {cert.subject.human_friendly}")
    click.echo(f"Issuer:      {cert.issuer.human_friendly}" + (" (self-signed)" if cert.self_signed else ""))
    click.echo(f"Valid until: {cert.not_valid_after:%Y-%m-%d}")
    click.echo(f"SHA-256:     {cert.sha256_fingerprint}")

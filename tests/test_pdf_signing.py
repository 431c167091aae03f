"""PAdES signatures on report PDFs: pdfsig, pyHanko and qpdf agree, the signer line shows, keys stay private.

One small PDF/A-3b document is rendered and signed once for the module; no database is needed.
"""
import gc
import io
import os
import subprocess
import warnings
from datetime import UTC, datetime

import pytest
import weasyprint
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from flask import Flask

from opsmgr.reports.cli import reports
from opsmgr.reports.signing import SELF_SIGNED_FILENAME, SigningKeyError, sign_pdf, signing_identity, verify_pdf

HTML = """<style>@page { size: A4; margin: 20mm 18mm 25mm;
  @bottom-center { content: "Page " counter(page) " of " counter(pages); font-family: 'DejaVu Sans'; } }
body { font-family: 'DejaVu Sans'; }</style><h1>Series summary</h1><p>Jane Doe — PHQ-9 21 → 4</p>"""
SIGNED_AT = datetime(2026, 11, 26, 20, 5, tzinfo=UTC)
SIGNER_LINE = "Electronically signed by Amira Haddad, MD on 2026-11-26 15:05 EST"


def bare_app(instance_path, **config):
    app = Flask(__name__, instance_path=str(instance_path))
    app.config.update(CLINIC_NAME="Cedar Ketamine Clinic", **config)
    return app


def sign(pdf, app, document_id="R7K2M9"):
    return sign_pdf(pdf, signer_name="Amira Haddad", signer_credentials="MD", signed_at=SIGNED_AT,
                    zone="America/New_York", document_id=document_id, reason="Series summary approved", app=app)


def run(*command):
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def unsigned():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # WeasyPrint 70 leaves its sRGB profile file open
        pdf = weasyprint.HTML(string=HTML).write_pdf(pdf_variant="pdf/a-3b")
        gc.collect()
    return pdf


@pytest.fixture(scope="module")
def own_app(tmp_path_factory):
    return bare_app(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="module")
def signed(unsigned, own_app, tmp_path_factory):
    path = tmp_path_factory.mktemp("signed") / "signed.pdf"
    path.write_bytes(sign(unsigned, own_app))
    return path


def test_signed_pdf_is_valid_for_pdfsig_and_qpdf_and_shows_the_signer_line(unsigned, signed):
    data = signed.read_bytes()
    assert data.startswith(unsigned), "signing must be an incremental update"
    report = run("pdfsig", str(signed)).stdout
    assert "Signature Validation: Signature is Valid." in report
    assert "Signature Field Name: Document R7K2M9" in report
    assert "Total document signed" in report
    assert run("qpdf", "--check", str(signed)).returncode == 0
    text = " ".join(run("pdftotext", str(signed), "-").stdout.split())
    assert SIGNER_LINE in text and "Document R7K2M9" in text
    fonts = run("pdffonts", str(signed)).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5:-2] == ["yes", "yes", "yes"] for line in fonts), fonts  # PDF/A: embedded
    assert run("pdfinfo", str(signed)).stdout.count("Producer:") == 1
    assert "WeasyPrint" not in run("pdfinfo", str(signed)).stdout  # Info /Producer matches the XMP one


def test_one_changed_byte_is_a_digest_mismatch_for_pdfsig_and_pyhanko(signed, own_app, tmp_path):
    data = bytearray(signed.read_bytes())
    data[3000] ^= 0x01
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(data)
    assert "Signature Validation: Digest Mismatch." in run("pdfsig", str(tampered)).stdout
    result = verify_pdf(bytes(data), app=own_app)
    assert not result.intact and result.problems == ("The file was changed after it was signed.",)


def test_verify_reports_intact_signer_and_document(signed, own_app):
    result = verify_pdf(signed.read_bytes(), app=own_app)
    assert result.intact and result.problems == ()
    assert (result.signer, result.document_id) == ("Amira Haddad, MD", "R7K2M9")
    assert result.signed_at.tzinfo is not None


def test_verify_refuses_unsigned_and_unreadable_files(unsigned, own_app):
    assert verify_pdf(unsigned, app=own_app).problems == ("The PDF carries no signature.",)
    assert verify_pdf(b"%PDF-1.7 not really", app=own_app).problems == ("The file is not a readable PDF.",)


def test_sign_refuses_naive_time_and_odd_document_ids(unsigned, own_app):
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_pdf(unsigned, signer_name="A", signer_credentials="MD", signed_at=datetime(2026, 1, 1),
                 zone="UTC", document_id="X1", reason="r", app=own_app)
    with pytest.raises(ValueError, match="document_id"):
        sign(unsigned, own_app, document_id="a.b")


def test_generated_key_file_is_private_and_reused(own_app, signed):
    key_file = os.path.join(own_app.instance_path, SELF_SIGNED_FILENAME)
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert signing_identity(own_app) is signing_identity(bare_app(own_app.instance_path))
    assert signing_identity(own_app).certificate.subject.native["common_name"] == "Cedar Ketamine Clinic"
    own_app.cli.add_command(reports)
    shown = own_app.test_cli_runner().invoke(args=["reports", "signing-key"])
    assert shown.exit_code == 0 and "Subject:     Organization: Cedar Ketamine Clinic" in shown.output
    assert "(self-signed)" in shown.output and key_file in shown.output


def make_pkcs12(path, password):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cedar Clinic Document Signing")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(datetime(2026, 1, 1)).not_valid_after(datetime(2036, 1, 1))
            .sign(key, hashes.SHA256()))
    encryption = serialization.BestAvailableEncryption(password.encode())
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"clinic", key, cert, None, encryption))


def test_configured_pkcs12_signs_and_the_own_key_is_no_longer_trusted(unsigned, signed, tmp_path):
    p12 = tmp_path / "clinic.p12"
    make_pkcs12(p12, "s3cret-pass")
    app = bare_app(tmp_path / "instance", SIGNING_P12=str(p12), SIGNING_P12_PASSWORD="s3cret-pass")
    data = sign(unsigned, app)
    path = tmp_path / "p12-signed.pdf"
    path.write_bytes(data)
    assert "Common Name: Cedar Clinic Document Signing" in run("pdfsig", str(path)).stdout
    assert verify_pdf(data, app=app).intact
    assert not (tmp_path / "instance" / SELF_SIGNED_FILENAME).exists()
    other = verify_pdf(signed.read_bytes(), app=app)  # another install's key
    assert not other.intact and other.problems == ("It was not signed with this clinic's signing key.",)
    wrong = bare_app(tmp_path / "instance", SIGNING_P12=str(p12), SIGNING_P12_PASSWORD="wrong")
    with pytest.raises(SigningKeyError, match="OPSMGR_SIGNING_P12_PASSWORD"):
        signing_identity(wrong)


def test_a_signer_named_in_chinese_prints_in_the_visible_block(unsigned, own_app, tmp_path):
    """DejaVu has no CJK: the stamp's font merges in Droid Sans Fallback for the characters it lacks."""
    from fontTools.ttLib import TTFont

    from opsmgr.reports.signing import _stamp_font, stamp_charset

    name = "王小明"
    font = TTFont(io.BytesIO(_stamp_font(stamp_charset(f"Electronically signed by {name}, MD"))))
    assert all(ord(char) in font.getBestCmap() for char in name + "Electronically signed by, MD0123456789:-")
    path = tmp_path / "cjk.pdf"
    path.write_bytes(sign_pdf(unsigned, signer_name=name, signer_credentials="MD", signed_at=SIGNED_AT,
                              zone="America/New_York", document_id="CJK1", reason="Signed", app=own_app))
    assert "Signature is Valid." in run("pdfsig", str(path)).stdout
    assert f"Electronically signed by {name}, MD" in " ".join(run("pdftotext", str(path), "-").stdout.split())

"""PAdES signatures on report PDFs: the clinic's signing key, `sign_pdf` and `verify_pdf`.

The key is either a PKCS#12 file the clinic's CA issued (OPSMGR_SIGNING_P12) or a per-install
key with a self-signed certificate, generated into instance/ on first use. Signing is an
incremental update (the unsigned PDF stays an exact prefix) and keeps PDF/A-3b valid: the visible
block uses an embedded DejaVu font, and the Info /Producer is dropped so that it matches the XMP.
"""
import asyncio
import concurrent.futures
import functools
import io
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

#: The per-install key and its self-signed certificate (PEM, both in one file, mode 600).
SELF_SIGNED_FILENAME = "signing_key.pem"
#: What the self-signed certificate is valid for: longer than any record is kept.
SELF_SIGNED_VALIDITY = timedelta(days=365 * 50)
#: Document IDs go into the signature field name, where "." would nest fields.
DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FIELD_PREFIX = "Document "
#: The visible block: font size (points) and its default place, in mm from the page's edges.
STAMP_FONT_SIZE = 8
STAMP_MARGIN_MM = 18
STAMP_BOTTOM_MM = 27
STAMP_HEIGHT_MM = 16
MM = 72 / 25.4
DEJAVU_FALLBACK = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
STAMP_ASCII = "".join(map(chr, range(0x20, 0x7F)))

log = logging.getLogger(__name__)


class SigningKeyError(RuntimeError):
    """The configured signing key cannot be used; the message says what the admin should fix."""


@dataclass(frozen=True)
class SigningIdentity:
    signer: object  # pyhanko SimpleSigner
    #: Certificates a signature is checked against: ours, its chain, and an earlier self-signed one.
    trust_roots: tuple
    source: str

    @property
    def certificate(self):
        return self.signer.signing_cert

    @functools.cached_property
    def bytes_reserved(self):
        """Room for the signature in a PDF, measured once per key as pyHanko measures it before every
        signature (a dry-run PAdES signature, in hex digits, plus its 50 % margin): its size depends on
        the key and certificates only, so measuring it for every PDF was wasted time."""
        from cryptography.hazmat.primitives import hashes
        from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

        empty_digest = hashes.Hash(hashes.SHA256()).finalize()
        dry_run = _run_coroutine(lambda: self.signer.async_sign(
            empty_digest, "sha256", dry_run=True, use_pades=True,
            signed_attr_settings=PdfCMSSignedAttributes(signing_time=datetime.now(UTC))))
        length = len(dry_run.dump()) * 2
        return length + 2 * (length // 4)


@dataclass(frozen=True)
class Verification:
    #: True only when the file is unchanged since signing and was signed with this clinic's key.
    intact: bool
    #: "Name, credentials" as signed (the signature's /Name), or None.
    signer: str | None = None
    #: When the PDF signature was made (aware, UTC), as the signature reports it.
    signed_at: datetime | None = None
    document_id: str | None = None
    problems: tuple = field(default_factory=tuple)


# --- the key --------------------------------------------------------------------------------


def signing_identity(app):
    """The signing key for this app's configuration, loaded once per process."""
    p12 = app.config.get("SIGNING_P12")
    own = Path(app.instance_path) / SELF_SIGNED_FILENAME
    if p12:
        password = app.config.get("SIGNING_P12_PASSWORD") or ""
        return _pkcs12_identity(str(p12), password, str(own))
    return _self_signed_identity(str(own), app.config.get("CLINIC_NAME") or "Infusion clinic")


@functools.cache
def _pkcs12_identity(path, password, own_path):
    from pyhanko.sign.signers import SimpleSigner

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SigningKeyError(f"OPSMGR_SIGNING_P12: cannot read {path} ({error.strerror}).") from None
    try:
        signer = SimpleSigner.load_pkcs12_data(data, (), passphrase=password.encode() or None)
    except ValueError:
        raise SigningKeyError(
            f"OPSMGR_SIGNING_P12: {path} is not a PKCS#12 file this password opens "
            "(check OPSMGR_SIGNING_P12_PASSWORD)."
        ) from None
    chain = tuple(signer.cert_registry)
    earlier = _read_self_signed(own_path)
    earlier_roots = (earlier.signing_cert,) if earlier else ()
    return SigningIdentity(signer, (signer.signing_cert, *chain, *earlier_roots), path)


@functools.cache
def _self_signed_identity(path, clinic_name):
    signer = _read_self_signed(path)
    if signer is None:
        _create_self_signed(path, clinic_name)
        signer = _read_self_signed(path)
    return SigningIdentity(signer, (signer.signing_cert,), path)


def _read_self_signed(path):
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.sign.signers import SimpleSigner

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    try:
        key = load_private_key_from_pemder_data(data, passphrase=None)
        (cert,) = load_certs_from_pemder_data(data)
    except ValueError:
        raise SigningKeyError(f"{path} is not a key and certificate in PEM; move it away to make a new one.") from None
    return SimpleSigner(signing_cert=cert, signing_key=key, cert_registry=_store(cert))


def _store(cert):
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    return SimpleCertificateStore.from_certs([cert])


def _create_self_signed(path, clinic_name, now=None):
    """Write key + certificate to `path` (mode 600); a concurrent creator's file wins."""
    pem = self_signed_pem(clinic_name, now or datetime.now(UTC))
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    try:
        os.link(temporary, path)  # atomic "create if absent"
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def self_signed_pem(clinic_name, now):
    """An EC P-256 key and a self-signed certificate naming the clinic, both as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, clinic_name[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, clinic_name[:64]),
    ])
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + SELF_SIGNED_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


# --- the font of the visible block ----------------------------------------------------------


def _font_file(family):
    """The path fontconfig gives for `family` (as WeasyPrint finds fonts), or None without fc-match."""
    try:
        return subprocess.run(  # noqa: S603 - fixed arguments
            [shutil.which("fc-match") or "/usr/bin/fc-match", "-f", "%{file}", family],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def _dejavu_sans():
    """The DejaVu Sans file, read once per process (where fonts-dejavu-core puts it without fontconfig)."""
    found = _font_file("DejaVu Sans") or DEJAVU_FALLBACK
    if not found.lower().endswith(".ttf") or "dejavusans" not in Path(found).name.lower():
        raise SigningKeyError("The DejaVu Sans font is missing (install fonts-dejavu-core); PDFs cannot be signed.")
    return Path(found).read_bytes()


@functools.cache
def _fallback_font():
    """Droid Sans Fallback (Debian fonts-droid-fallback: Chinese, Japanese, Korean), or None."""
    found = _font_file("Droid Sans Fallback")
    return Path(found).read_bytes() if found and "droidsansfallback" in Path(found).name.lower() else None


#: The tables a merged stamp font keeps (fontTools' merger needs the same set in both fonts).
_MERGED_TABLES = ("cmap", "glyf", "head", "hhea", "hmtx", "loca", "maxp", "name", "post", "OS/2")


def _subset(font_bytes, text, *, merged=False):
    from fontTools import subset
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.scaleUpem import scale_upem

    font = TTFont(io.BytesIO(font_bytes))
    options = subset.Options()
    options.hinting = False
    options.layout_features = [] if merged else ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]
    if merged:
        tables = font.keys()  # noqa: SIM118 - a TTFont is not iterated by its table tags
        options.drop_tables += [tag for tag in tables if tag not in _MERGED_TABLES and tag != "GlyphOrder"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    scale_upem(font, 1000)
    if merged:
        os2 = font["OS/2"]
        if os2.version < 2:  # the merger compares version-2 fields
            os2.version, os2.sxHeight, os2.sCapHeight = 2, 0, 0
            os2.usDefaultChar, os2.usBreakChar, os2.usMaxContext = 0, 32, 1
        os2.version = min(os2.version, 4)
        font["post"].formatType = 3.0
    return font


@functools.lru_cache(maxsize=32)
def _stamp_font(text):
    """DejaVu Sans cut down to `text` and rescaled to 1000 units/em; characters DejaVu lacks (a name in
    Chinese, Japanese or Korean) are merged in from Droid Sans Fallback, so the block never prints a
    missing-glyph box.

    pyHanko 0.38 writes glyph widths in font units, so DejaVu's 2048/em spaces the stamp twice too
    wide; rescaling the whole font takes seconds, a subset about 0.2 s (hence stamp_charset).
    """
    font = _subset(_dejavu_sans(), text)
    covered = font.getBestCmap()
    missing = "".join(char for char in text if ord(char) not in covered and not char.isspace())
    fallback = _fallback_font() if missing else None
    if fallback is not None:
        from fontTools.merge import Merger

        parts = []
        for part in (_subset(_dejavu_sans(), text, merged=True), _subset(fallback, missing, merged=True)):
            buffer = io.BytesIO()
            part.save(buffer)
            buffer.seek(0)
            parts.append(buffer)
        font = Merger().merge(parts)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def stamp_charset(text):
    """The characters the stamp's font is cut down to: printable ASCII (every document ID, date and
    time) plus whatever else `text` uses (a name's accents), in one canonical order. So one subset,
    made once per process, serves every document a signer signs, instead of one per document ID;
    pyHanko embeds only the glyphs the stamp uses either way."""
    return STAMP_ASCII + "".join(sorted(set(text) - set(STAMP_ASCII)))


def _font_factory(text):
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory

    font_bytes = _stamp_font(stamp_charset(text))

    class InMemoryFont(GlyphAccumulatorFactory):
        """pyHanko's factory opens a path (and leaves it open); this one reads bytes."""

        def create_font_engine(self, writer, obj_stream=None):
            if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
                obj_stream = writer.prepare_object_stream()
            return GlyphAccumulator(
                writer=writer, font_handle=io.BytesIO(font_bytes), font_size=self.font_size, obj_stream=obj_stream,
            )

    return InMemoryFont(font_file="DejaVuSans-1000.ttf", font_size=STAMP_FONT_SIZE)


# --- signing --------------------------------------------------------------------------------


def stamp_lines(signer_name, signer_credentials, signed_at, zone):
    """The visible block's two lines, with the time in the clinic's zone."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    local = signed_at.astimezone(zone)
    who = ", ".join(part.strip() for part in (signer_name, signer_credentials or "") if part and part.strip())
    return f"Electronically signed by {who} on {local:%Y-%m-%d %H:%M} {local.tzname()}", who


def sign_pdf(pdf_bytes, *, signer_name, signer_credentials, signed_at, zone, document_id, reason, app,
             page=-1, box=None):
    """The PDF with a PAdES signature and a visible block appended as an incremental update.

    `page` is the page index of the block (default the last); `box` its (x1, y1, x2, y2) in points
    from the bottom-left corner (default: between the side margins, 27–43 mm above the bottom edge).
    """
    from pyhanko import stamp
    from pyhanko.pdf_utils import layout, text
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    if signed_at.tzinfo is None:
        raise ValueError("signed_at must be timezone-aware")
    if not DOCUMENT_ID.match(document_id or ""):
        raise ValueError("document_id must be 1 to 64 letters, digits, '-' or '_'")
    line, who = stamp_lines(signer_name, signer_credentials, signed_at, zone)
    identity = signing_identity(app)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes))
    _drop_producer(writer)
    pages = int(writer.root["/Pages"]["/Count"])
    page_index = page % pages
    field_name = FIELD_PREFIX + document_id
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, name=who, reason=reason, location=app.config.get("CLINIC_NAME"),
        subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256",
    )
    visible = f"{line}\nDocument {document_id}"
    style = stamp.TextStampStyle(
        stamp_text=visible.replace("%", "%%"),
        text_box_style=text.TextBoxStyle(font_size=STAMP_FONT_SIZE, font=_font_factory(visible)),
        border_width=0,
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MIN, y_align=layout.AxisAlignment.ALIGN_MID,
            inner_content_scaling=layout.InnerScaling.SHRINK_TO_FIT,
        ),
    )
    spec = fields.SigFieldSpec(field_name, on_page=page_index, box=box or _default_box(writer, page_index))
    out = io.BytesIO()
    pdf_signer = signers.PdfSigner(meta, signer=identity.signer, stamp_style=style, new_field_spec=spec)
    _run_coroutine(lambda: pdf_signer.async_sign_pdf(writer, output=out, bytes_reserved=identity.bytes_reserved))
    return out.getvalue()


def _run_coroutine(make):
    """Run pyHanko's coroutine to completion. Its synchronous wrappers call asyncio.run(), which refuses to
    run inside a thread that already has an event loop (an async server, Playwright's sync API in the
    tests): there it runs in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _drop_producer(writer):
    """pyHanko appends to the Info /Producer but replaces the XMP one; PDF/A needs the two to agree."""
    try:
        info = writer.trailer["/Info"].get_object()
    except KeyError:
        return
    if "/Producer" in info:
        del info["/Producer"]


def _default_box(writer, page_index):
    page_ref, _ = writer.find_page_for_modification(page_index)
    left, bottom, right, _top = (float(v) for v in page_ref.get_object().get("/MediaBox", (0, 0, 595, 842)))
    margin = STAMP_MARGIN_MM * MM
    y1 = bottom + STAMP_BOTTOM_MM * MM
    return (round(left + margin), round(y1), round(right - margin), round(y1 + STAMP_HEIGHT_MM * MM))


# --- verification ---------------------------------------------------------------------------


def verify_pdf(pdf_bytes, *, app):
    """Whether the PDF is unchanged since signing and was signed with this clinic's key; never raises on bad input."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        signatures = PdfFileReader(io.BytesIO(pdf_bytes), strict=False).embedded_signatures
        if signatures:
            embedded = signatures[-1]
            found = _claims(embedded)
    except Exception:  # noqa: BLE001 - any parser error on an upload reads as "not a PDF", never a 500
        return Verification(False, problems=("The file is not a readable PDF.",))
    if not signatures:
        return Verification(False, problems=("The PDF carries no signature.",))
    roots = signing_identity(app).trust_roots
    try:
        status = _run_coroutine(lambda: async_validate_pdf_signature(
            embedded, ValidationContext(trust_roots=list(roots))))
    except Exception:  # noqa: BLE001 - a damaged signature must read as "not intact", never a 500
        log.warning("PDF signature could not be validated", exc_info=True)
        return Verification(False, problems=("The signature is damaged and cannot be checked.",), **found)
    problems = _problems(status, len(signatures))
    return Verification(not problems, signed_at=_utc(status.signer_reported_dt), problems=problems, **found)


def _claims(embedded):
    """Who the signature names and which document its field is for, as written in the file."""
    name = embedded.sig_object.get("/Name")
    field_name = embedded.field_name or ""
    return {
        "signer": str(name) if name is not None else None,
        "document_id": field_name[len(FIELD_PREFIX):] if field_name.startswith(FIELD_PREFIX) else None,
    }


def _problems(status, count):
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    problems = []
    if not (status.intact and status.valid):
        problems.append("The file was changed after it was signed.")
    elif status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problems.append("Content was added to the file after it was signed.")
    elif not status.trusted:
        problems.append("It was not signed with this clinic's signing key.")
    if count > 1:
        problems.append("The file carries more than one signature.")
    return tuple(problems)


def _utc(value):
    return value.astimezone(UTC) if value is not None else None

"""The backup file: a gzip'd tar of named members, encrypted with AES-256-GCM under the operator's key.

Layout of an encrypted file: MAGIC, the scrypt cost (log2 N, r, p: one byte each), a 16-byte salt and
a 12-byte nonce (the header, authenticated as associated data), the ciphertext, and the 16-byte GCM
tag. A file written with --no-encrypt is the plain .tar.gz. Restoring decrypts into a private
temporary folder and only reads it once the tag has verified, so a wrong key and any altered byte
are refused before anything is restored.
"""
import gzip
import os
import secrets
import tarfile
from dataclasses import dataclass
from pathlib import Path

from opsmgr.core.files import file_sha256  # noqa: F401 -- bundle.file_sha256 is this module's API

MAGIC = b"OPSMGR-BACKUP\x00\x01"
SALT_BYTES, NONCE_BYTES, TAG_BYTES = 16, 12, 16
HEADER_BYTES = len(MAGIC) + 3 + SALT_BYTES + NONCE_BYTES
#: scrypt N = 2**15, r = 8, p = 1: 32 MiB and about 0.1 s per backup or restore.
KDF_COST = (15, 8, 1)
#: The shortest key accepted: `openssl rand -base64 32` gives 44 characters.
MIN_KEY_LENGTH = 16
CHUNK = 1024 * 1024
#: What a bundle may hold; anything else in a tar is refused, never extracted.
MEMBERS = ("manifest.json", "database.sqlite3", "database.pgdump", "audit-anchors.log")


class BundleError(Exception):
    """A backup file that cannot be read: wrong key, altered or damaged, or not a backup at all."""


@dataclass(frozen=True)
class Opened:
    folder: Path
    encrypted: bool


def check_key(key):
    if key is not None and len(key) < MIN_KEY_LENGTH:
        raise BundleError(f"The backup key is shorter than {MIN_KEY_LENGTH} characters; "
                          "make one with `openssl rand -base64 32`.")


def _derive(key, salt, cost):
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    log_n, r, p = cost
    return Scrypt(salt=salt, length=32, n=2 ** log_n, r=r, p=p).derive(key.encode())


class _Encrypting:
    """A write-only file object: what is written to it lands encrypted in `handle`."""

    def __init__(self, handle, key):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        salt, nonce = secrets.token_bytes(SALT_BYTES), secrets.token_bytes(NONCE_BYTES)
        header = MAGIC + bytes(KDF_COST) + salt + nonce
        self.handle = handle
        self.encryptor = Cipher(algorithms.AES(_derive(key, salt, KDF_COST)), modes.GCM(nonce)).encryptor()
        self.encryptor.authenticate_additional_data(header)
        handle.write(header)

    def write(self, data):
        self.handle.write(self.encryptor.update(data))
        return len(data)

    def flush(self):
        self.handle.flush()

    def finish(self):
        self.handle.write(self.encryptor.finalize() + self.encryptor.tag)


def write_bundle(out, members, key):
    """Write `members` ({name: path}) to `out` (mode 600, created anew); encrypted unless `key` is None.
    A file left half-written (a full disk) is removed."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write(fd, members, key)
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise


def _write(fd, members, key):
    with os.fdopen(fd, "wb") as handle:
        sink = _Encrypting(handle, key) if key is not None else handle
        with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=0) as packed, \
                tarfile.open(fileobj=packed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name, path in members.items():
                info = tar.gettarinfo(str(path), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = 0o600
                with open(path, "rb") as source:
                    tar.addfile(info, source)
        if key is not None:
            sink.finish()
        handle.flush()
        os.fsync(handle.fileno())


def is_encrypted(path):
    with open(path, "rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def open_bundle(path, key, folder):
    """Decrypt (when encrypted) and unpack `path` into `folder`; returns Opened. Raises BundleError."""
    folder = Path(folder)
    encrypted = is_encrypted(path)
    if encrypted:
        if key is None:
            raise BundleError("This backup is encrypted: give its key (--key-file or OPSMGR_BACKUP_KEY).")
        packed = folder / "bundle.tar.gz"
        _decrypt(path, key, packed)
    else:
        packed = Path(path)
    try:
        _unpack(packed, folder)
    except (OSError, EOFError, tarfile.TarError, gzip.BadGzipFile) as error:
        raise BundleError(f"The backup file is damaged or is not an opsmgr backup ({error}).") from None
    finally:
        if encrypted:
            packed.unlink(missing_ok=True)
    return Opened(folder, encrypted)


def _decrypt(path, key, target):
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    size = os.path.getsize(path)
    if size < HEADER_BYTES + TAG_BYTES:
        raise BundleError("The backup file is truncated.")
    with open(path, "rb") as handle:
        header = handle.read(HEADER_BYTES)
        cost = tuple(header[len(MAGIC):len(MAGIC) + 3])
        if not (10 <= cost[0] <= 18 and 1 <= cost[1] <= 8 and 1 <= cost[2] <= 4):  # at most 256 MiB
            raise BundleError("The backup file's header is damaged.")
        salt = header[len(MAGIC) + 3:len(MAGIC) + 3 + SALT_BYTES]
        nonce = header[-NONCE_BYTES:]
        handle.seek(size - TAG_BYTES)
        tag = handle.read(TAG_BYTES)
        handle.seek(HEADER_BYTES)
        decryptor = Cipher(algorithms.AES(_derive(key, salt, cost)), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(header)
        remaining = size - HEADER_BYTES - TAG_BYTES
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            while remaining:
                chunk = handle.read(min(CHUNK, remaining))
                remaining -= len(chunk)
                out.write(decryptor.update(chunk))
            try:
                out.write(decryptor.finalize())
            except InvalidTag:
                raise BundleError("The backup cannot be decrypted: the key is wrong, or the file was altered "
                                  "or damaged.") from None


def _unpack(packed, folder):
    with gzip.open(packed, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if member.name not in MEMBERS or not member.isfile():
                raise BundleError(f"The backup holds an unexpected entry {member.name!r}; refused.")
            source = tar.extractfile(member)
            fd = os.open(folder / member.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)

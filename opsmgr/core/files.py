"""Small file helpers shared by the report export and the backup."""
import hashlib

CHUNK = 1 << 20


def file_sha256(path):
    """The SHA-256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()

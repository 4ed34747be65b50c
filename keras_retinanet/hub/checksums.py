"""What a cached file is checked against: published hashes, a hash given in a URL, and the pin of a file with neither.

A file with a published hash (:mod:`keras_retinanet.hub.registry`) is checked against it; a URL may carry its own
hash, as pip's do (``URL#sha256=<hex>``); a file with neither is pinned on first use: the SHA-256 of its first
download is stored beside it as ``<file>.sha256`` (in ``sha256sum``'s format, so ``sha256sum -c`` reads it) and
checked every later time.
"""

import dataclasses
import hashlib
import os
from typing import Dict, List, Optional, Tuple

from ..atomic_files import write_bytes_atomically

PIN_SUFFIX = ".sha256"
# The hashes a URL may carry as '#<algorithm>=<hex>' (pip's), and their number of hex digits.
URL_HASH_DIGITS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}


@dataclasses.dataclass(frozen=True)
class Checksum:
    """One hash a file must have.

    Attributes:
        algorithm: a hashlib name ('md5', 'sha256', ...).
        digest: lower-case hex digits.
        kind: 'published' (the registry's), 'given' (in the URL) or 'pinned' (at the first download).
    """

    algorithm: str
    digest: str
    kind: str


def file_digest(path: str, algorithm: str) -> str:
    """Hex digest of a file ('md5', 'sha256', or any other hashlib algorithm), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def first_mismatch(path: str, checksums: List[Checksum]) -> Optional[Tuple[Checksum, str]]:
    """The first checksum ``path`` fails and the digest it has instead, or None when it passes them all."""
    found: Dict[str, str] = {}
    for checksum in checksums:
        if checksum.algorithm not in found:
            found[checksum.algorithm] = file_digest(path, checksum.algorithm)
        if found[checksum.algorithm] != checksum.digest:
            return checksum, found[checksum.algorithm]
    return None


def read_pin(path: str) -> Optional[Tuple[str, bool]]:
    """(the pinned SHA-256 of ``path``, whether the pin is of the old kind: the hash alone), or None."""
    try:
        with open(path + PIN_SUFFIX) as handle:
            fields = handle.read().split()
    except OSError:
        return None
    if not fields:
        return None
    return fields[0].lower(), len(fields) == 1


def write_pin(path: str, digest: str) -> None:
    """Record the SHA-256 of ``path`` beside it, as ``sha256sum`` writes it (``sha256sum -c`` reads it)."""
    write_bytes_atomically(f"{digest}  {os.path.basename(path)}\n".encode("utf-8"), path + PIN_SUFFIX)

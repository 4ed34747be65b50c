"""Weight files by path, name or URL: a verified download cache keyed by source.

:func:`fetch` turns what a user wrote into a local file:

- an existing path is returned as it is (a local file keeps working everywhere a name works);
- a known name (:mod:`keras_retinanet.hub.registry`) or an http(s)/file URL is looked up in the cache
  ``$KERAS_RETINANET_HOME/weights/`` (default ``$XDG_CACHE_HOME/keras_retinanet``, else
  ``~/.cache/keras_retinanet``) and downloaded there when missing.

Each source has its own place in the cache, so that two sources never share a file: a known name (or its
published URL) lives at ``weights/<file name>``, its published name; any other URL at
``weights/url/<key>/<file name>``, where the key is the first 16 hex digits of the SHA-256 of the URL
without its ``#fragment`` (:func:`cache_path` tells the place). ``https://a/model.h5`` and
``https://b/model.h5`` are two files.

A download goes to ``<file>.part`` and is renamed to ``<file>`` only once it is complete and its
checksum matches, so an interrupted or corrupt download never sits in the cache (a stale ``.part``
from a killed process is overwritten). A file with a published hash is checked against it, on
download and each time it is used from the cache. A URL may carry its own hash, as pip's do:
``URL#sha256=<hex>`` (or ``md5``, ``sha1``, ``sha224``, ``sha384``, ``sha512``), checked the same way; a
fragment that is no such hash is an error rather than ignored. A file with neither (e.g. keras-retinanet's
COCO model) is pinned on first use: the SHA-256 of its first download is stored as ``<file>.sha256`` (in
``sha256sum``'s format) and checked every later time, and a warning says so once, with the hash and how to
check it.

Files cached by versions before 1.2.0, which keyed the cache by file name alone, sit at ``weights/<file
name>`` whatever their source. A known name's file there is used when its published hash verifies; one
without a published hash carries an old pin (the hash alone, no file name) that may come from another URL
of the same file name, so it is downloaded again from its source. Old files of other URLs are never
looked at again.

``$KERAS_RETINANET_MIRROR`` (a base URL, e.g. ``https://mirror.example.com/weights`` or
``file:///shared/weights``) replaces the origin of known names: the file is fetched from
``$MIRROR/<file name>`` and verified as if it came from the origin (a URL is always fetched from itself).
urllib's usual ``https_proxy`` variables also apply.
"""

import contextlib
import dataclasses
import hashlib
import http.client
import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, Iterator, List, Optional, TextIO, Tuple

from ..errors import RetinaNetError
from .progress import Progress
from .registry import REGISTRY, UnknownWeightsError, WeightsEntry, find, weights_names

try:  # POSIX: processes sharing a cache (workers of one machine) download one at a time
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; downloads then race, each atomic
    fcntl = None

logger = logging.getLogger(__name__)

ENV_HOME = "KERAS_RETINANET_HOME"
ENV_MIRROR = "KERAS_RETINANET_MIRROR"
CACHE_SUBDIR = "weights"
URL_SUBDIR = "url"  # weights/url/<key>/<file name>: files of URLs that are no known name's
URL_KEY_DIGITS = 16  # hex digits of the URL's SHA-256 in its folder name (64 bits)
PART_SUFFIX = ".part"
PIN_SUFFIX = ".sha256"
CHUNK_BYTES = 1 << 16
# Seconds a connection attempt or a silent read may take: offline fails within seconds, not minutes.
DEFAULT_TIMEOUT = 20.0
USER_AGENT = "keras-retinanet-weights-fetch"
URL_SCHEMES = ("http", "https", "file")
# The hashes a URL may carry as '#<algorithm>=<hex>' (pip's), and their number of hex digits.
URL_HASH_DIGITS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}


class DownloadError(RetinaNetError):
    """A download that failed: names the URL and the local alternatives."""


class ChecksumError(DownloadError, ValueError):
    """A file whose hash is not the expected one: names the URL, the expected and the found hash."""


class SourceError(UnknownWeightsError):
    """A URL that cannot be used as written: no file name at its end, or a fragment that is no valid hash."""


@dataclasses.dataclass(frozen=True)
class Fetched:
    """Where a fetched file is and how it got there.

    Attributes:
        path: the local file.
        origin: 'local' (a path the user gave), 'cache' (already downloaded and verified) or
            'download' (downloaded now).
        url: the URL it was (or would be) downloaded from; None for a local path.
        name: its registry name, or None.
    """

    path: str
    origin: str
    url: Optional[str] = None
    name: Optional[str] = None

    def describe(self) -> str:
        """e.g. '/home/u/.cache/keras_retinanet/weights/x.h5 (downloaded from https://...)'."""
        how = {"local": "local file", "cache": "cached", "download": f"downloaded from {self.url}"}[self.origin]
        return f"{self.path} ({how})"


@dataclasses.dataclass(frozen=True)
class _Checksum:
    algorithm: str
    digest: str
    kind: str  # 'published', 'given' (in the URL) or 'pinned' (at the first download)


@dataclasses.dataclass(frozen=True)
class _Target:
    """A name or URL: where it comes from, where the cache keeps it and what it is checked against."""

    origin_url: str  # without its fragment
    file_name: str
    folder: str  # the cache folder (locked while downloading)
    path: str  # the file's place in the cache
    entry: Optional[WeightsEntry]
    published: Optional[_Checksum]
    given: Optional[_Checksum]

    @property
    def url(self) -> str:
        """Where it is downloaded from: the mirror for a known name when one is set, else its origin."""
        return (mirror_url(self.file_name) if self.entry is not None else None) or self.origin_url

    @property
    def label(self) -> str:
        return self.entry.name if self.entry is not None else self.origin_url


def home() -> str:
    """The package's cache folder: ``$KERAS_RETINANET_HOME``, else ``$XDG_CACHE_HOME/keras_retinanet``,
    else ``~/.cache/keras_retinanet``."""
    configured = os.environ.get(ENV_HOME, "").strip()
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "keras_retinanet")


def cache_dir(subdir: str = CACHE_SUBDIR) -> str:
    """The folder downloaded files of one kind live in (default: weights), not created here."""
    return os.path.join(home(), subdir)


def is_url(text: str) -> bool:
    """Whether ``text`` is an http, https or file URL."""
    return urllib.parse.urlsplit(text).scheme.lower() in URL_SCHEMES


def mirror_url(file_name: str) -> Optional[str]:
    """``$KERAS_RETINANET_MIRROR/<file_name>``, or None when no mirror is set."""
    mirror = os.environ.get(ENV_MIRROR, "").strip()
    if not mirror:
        return None
    return f"{mirror.rstrip('/')}/{urllib.parse.quote(file_name)}"


def url_key(url: str) -> str:
    """The cache folder name of a URL's file: 16 hex digits of the SHA-256 of the URL without its fragment."""
    bare = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(fragment=""))
    return hashlib.sha256(bare.encode("utf-8")).hexdigest()[:URL_KEY_DIGITS]


def _split_url(url: str) -> Tuple[str, str, Optional[_Checksum]]:
    """(URL without fragment, file name, the hash of a '#sha256=<hex>' (or md5, ...) fragment or None).

    Raises:
        SourceError: the URL ends in no file name, or has a fragment that is no valid hash.
    """
    parts = urllib.parse.urlsplit(url)
    given = None
    if parts.fragment:
        algorithm, _, digest = parts.fragment.partition("=")
        algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
        digits = URL_HASH_DIGITS.get(algorithm)
        if digits is None or len(digest) != digits or any(c not in "0123456789abcdef" for c in digest):
            what = f"{algorithm} of {digits} hex digits" if digits is not None else "a hash"
            raise SourceError(
                f"URL '{url}': its fragment '#{parts.fragment}' is not {what}; write #sha256=<64 hex digits> "
                f"(or {', '.join(a for a in URL_HASH_DIGITS if a != 'sha256')})"
            )
        given = _Checksum(algorithm, digest, "given")
    bare = urllib.parse.urlunsplit(parts._replace(fragment=""))
    file_name = urllib.parse.unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    if not file_name or file_name in (".", ".."):
        raise SourceError(f"URL '{url}' does not end in a file name")
    return bare, file_name, given


def _unknown(source: str) -> UnknownWeightsError:
    looks_like_path = os.sep in source or "/" in source or source.lower().endswith((".h5", ".hdf5", ".keras"))
    what = f"no such file '{source}'" if looks_like_path else f"'{source}' is not a file, a URL or a known weights name"
    return UnknownWeightsError(f"{what}; known names: {', '.join(weights_names())}")


def is_known_source(source: str) -> bool:
    """Whether :func:`fetch` can work on ``source``: an existing path, a URL or a known name (no download)."""
    return os.path.exists(os.path.expanduser(source)) or is_url(source) or find(source) is not None


def check_source(source: str) -> None:
    """Raise the error :func:`fetch` would for a source that is no file, URL or known name, or a URL with a
    malformed hash (:class:`SourceError`); never downloads."""
    if not is_known_source(source):
        raise _unknown(source)
    if is_url(source) and not os.path.exists(os.path.expanduser(source)):
        _split_url(source)


def file_digest(path: str, algorithm: str) -> str:
    """Hex digest of a file ('md5', 'sha256', or any other hashlib algorithm), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _target(source: str, cache_subdir: str) -> _Target:
    """Where a name or URL comes from, where the cache keeps it and its published or given hash."""
    if is_url(source):
        origin_url, file_name, given = _split_url(source)
        entry = next((e for e in REGISTRY.values() if e.url == origin_url), None)  # a known file by its URL
    else:
        entry = find(source)
        if entry is None:
            raise _unknown(source)
        origin_url, file_name, given = entry.url, entry.file_name, None
    folder = cache_dir(cache_subdir)
    if entry is not None:  # a known name: its published file name, readable, as before 1.2.0
        file_name = entry.file_name
        path = os.path.join(folder, file_name)
    else:
        path = os.path.join(folder, URL_SUBDIR, url_key(origin_url), file_name)
    published = None
    if entry is not None and entry.file_hash is not None:
        published = _Checksum(entry.hash_algorithm, entry.file_hash.lower(), "published")
    return _Target(origin_url, file_name, folder, path, entry, published, given)


def cache_path(source: str, *, cache_subdir: str = CACHE_SUBDIR) -> str:
    """The place in the cache of a known name's or a URL's file (whether it is there or not; nothing is fetched).

    A known name (or its published URL) has ``<cache>/<file name>``; any other URL
    ``<cache>/url/<16 hex digits of the URL's SHA-256>/<file name>``, the URL taken without its ``#fragment``.

    Raises:
        UnknownWeightsError: not a URL or a known name; SourceError: a URL ending in no file name or with a
            malformed hash.
    """
    return _target(source, cache_subdir).path


def _read_pin(path: str) -> Optional[Tuple[str, bool]]:
    """(the pinned SHA-256 of ``path``, whether the pin is of the old kind: the hash alone), or None."""
    try:
        with open(path + PIN_SUFFIX) as handle:
            fields = handle.read().split()
    except OSError:
        return None
    if not fields:
        return None
    return fields[0].lower(), len(fields) == 1


def _write_pin(path: str, digest: str) -> None:
    """Record the SHA-256 of ``path`` beside it, as ``sha256sum`` writes it (``sha256sum -c`` reads it)."""
    pin = path + PIN_SUFFIX
    with open(pin + PART_SUFFIX, "w") as handle:
        handle.write(f"{digest}  {os.path.basename(path)}\n")
    os.replace(pin + PART_SUFFIX, pin)


def _first_mismatch(path: str, checksums: List[_Checksum]) -> Optional[Tuple[_Checksum, str]]:
    """The first checksum ``path`` fails and the digest it has instead, or None when it passes them all."""
    found: Dict[str, str] = {}
    for checksum in checksums:
        if checksum.algorithm not in found:
            found[checksum.algorithm] = file_digest(path, checksum.algorithm)
        if found[checksum.algorithm] != checksum.digest:
            return checksum, found[checksum.algorithm]
    return None


def _warn_pinned(target: _Target, digest: str, how: str) -> None:
    """The one warning of a file trusted on first use: what was pinned, where, and how to check it."""
    logger.warning(
        f"{target.label} has no published checksum, so {how} is trusted and pinned to its SHA-256 {digest} "
        f"(kept in {target.path}{PIN_SUFFIX} and checked at every later use). Check it against a source you trust "
        f"with `sha256sum {target.path}`, and pass {target.origin_url}#sha256={digest} to require it next time"
    )


@contextlib.contextmanager
def _cache_lock(folder: str) -> Iterator[None]:
    """Hold an exclusive lock on the cache folder (POSIX), so that one process downloads a file at a time."""
    if fcntl is None:
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network mounts): each download is still atomic
            pass
        yield
    finally:
        os.close(handle)  # closing the descriptor releases the lock


def _one_line(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        text = f"HTTP {error.code} {error.reason}"
    elif isinstance(error, urllib.error.URLError):
        text = str(error.reason)
    elif isinstance(error, TimeoutError):
        text = "timed out"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def _download(url: str, part: str, label: str, timeout: float, progress: bool, stream: Optional[TextIO]) -> None:
    """Write ``url`` to ``part``; raise DownloadError (``part`` removed) unless every byte arrived."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    bar = None
    complete = False
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
            bar = Progress(f"Downloading {label}", total, stream=stream, enabled=progress)
            received = 0
            while True:
                chunk = response.read(CHUNK_BYTES)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(received)
            if total is not None and received < total:
                raise DownloadError(f"the connection closed after {received} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        complete = True
    except DownloadError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as error:  # URLError, timeouts, resets are OSErrors
        raise DownloadError(_one_line(error)) from None
    finally:
        if bar is not None:
            bar.finish(complete)
        if not complete and os.path.exists(part):
            os.remove(part)


def _remove_empty_url_folder(target: _Target) -> None:
    """Remove ``url/<key>/`` (and ``url/``) when a failed download left them empty."""
    if target.entry is not None:
        return
    folder = os.path.dirname(target.path)
    for empty in (folder, os.path.dirname(folder)):
        try:
            os.rmdir(empty)
        except OSError:  # not empty (or gone): nothing to tidy
            return


def _from_cache(target: _Target, pin: Optional[_Checksum]) -> Optional[Fetched]:
    """The cached file when it passes its checks; None when it must be downloaded (a damaged one is deleted)."""
    path = target.path
    own = [checksum for checksum in (target.published, pin) if checksum is not None]
    failed = _first_mismatch(path, own)
    if failed is not None:
        logger.warning(f"The cached {path} fails its {failed[0].algorithm} check; downloading it again")
        os.remove(path)
        return None
    if target.given is not None:
        failed = _first_mismatch(path, [target.given])
        if failed is not None:  # it is kept unless a download with the given hash replaces it
            logger.warning(
                f"The cached {path} has {failed[0].algorithm} {failed[1]}, not the {failed[0].digest} given in the "
                f"URL; downloading it again"
            )
            return None
    if target.published is None and pin is None:  # put there by hand (or an old pin the given hash replaces)
        digest = file_digest(path, "sha256")
        _write_pin(path, digest)
        if target.given is None:
            _warn_pinned(target, digest, "the file found in the cache")
    logger.debug(f"{target.label}: the cached {path}, checksum verified")
    return Fetched(path=path, origin="cache", url=target.url, name=target.entry.name if target.entry else None)


def _resolve_locked(target: _Target, hint: Optional[str], progress: bool, timeout: float,
                    stream: Optional[TextIO]) -> Fetched:  # fmt: skip
    path, url = target.path, target.url
    pin, old_pin = None, None
    if target.published is None:
        read = _read_pin(path)
        if read is not None and read[1] and target.entry is not None:
            if target.given is None:  # the file name alone keyed the cache then: its source is unknown
                old_pin = path + PIN_SUFFIX
        elif read is not None:
            pin = _Checksum("sha256", read[0], "pinned")
    if os.path.isfile(path):
        if old_pin is not None:
            logger.warning(
                f"{path} was cached by an earlier version, which kept any URL's file of that name there, and "
                f"{target.label} has no published checksum to prove it is its own; downloading it again from its source"
            )
        else:
            fetched = _from_cache(target, pin)
            if fetched is not None:
                return fetched
    part = path + PART_SUFFIX
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        _download(url, part, target.file_name, timeout, progress, stream)
    except DownloadError as error:
        via = f" (mirror of {target.origin_url})" if url != target.origin_url else ""
        alternatives = f"put {target.file_name} at {path}"
        if target.entry is not None:
            alternatives += f", or set {ENV_MIRROR} to a base URL that serves it"
        if old_pin is not None and os.path.isfile(path):
            alternatives += f", or delete {old_pin} to trust the copy cached by the earlier version"
        raise DownloadError(
            f"could not download {target.entry.name if target.entry else target.file_name} from {url}{via}: "
            f"{error}. Without internet access: {alternatives}; "
            f"{hint or 'or pass the local path of the file instead'}"
        ) from None
    explicit = [checksum for checksum in (target.published, target.given) if checksum is not None]
    failed = _first_mismatch(part, explicit or ([pin] if pin is not None else []))
    if failed is not None:
        os.remove(part)
        checksum, found = failed
        why = {
            "published": "published",
            "given": "given in the URL",
            "pinned": f"pinned at its first download in {path}{PIN_SUFFIX}; delete that to accept the new file",
        }[checksum.kind]
        via = f" (mirror of {target.origin_url})" if url != target.origin_url else ""
        raise ChecksumError(
            f"{target.file_name} downloaded from {url}{via} failed its {checksum.algorithm} check: expected "
            f"{checksum.digest} ({why}), found {found}; the download was deleted"
        )
    os.replace(part, path)
    if target.published is None:
        digest = file_digest(path, "sha256")
        if pin is None or pin.digest != digest:
            _write_pin(path, digest)
        if not explicit and pin is None:
            _warn_pinned(target, digest, "this first download")
    return Fetched(path=path, origin="download", url=url, name=target.entry.name if target.entry else None)


def resolve(
    source: str,
    *,
    cache_subdir: str = CACHE_SUBDIR,
    hint: Optional[str] = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    stream: Optional[TextIO] = None,
) -> Fetched:
    """The local file for a path, a known name or a URL, downloading it into the cache if needed.

    Args:
        source: a path, a registry name (:func:`keras_retinanet.hub.weights_names`) or a URL, which may end
            in ``#sha256=<hex>`` (or another hash, see the module's text) to be checked against.
        cache_subdir: the cache folder below :func:`home`.
        hint: what else the user can do when the download fails (e.g. '--no-weights'), added to the message.
        progress: draw a progress bar while downloading.
        timeout: seconds a connection or a read may stall before the download fails.
        stream: where the progress bar goes (default ``sys.stderr``). Notes (a file pinned on first use, a
            cached file downloaded again) are warnings of the package's logger.

    Returns:
        a :class:`Fetched` (the path and whether it was a local file, cached or downloaded).

    Raises:
        UnknownWeightsError: not a file, a URL or a known name (the message lists the names).
        SourceError: a URL ending in no file name, or with a fragment that is no valid hash.
        DownloadError: the download failed; the message names the URL and the alternatives.
        ChecksumError: the downloaded file has another hash; it was deleted.
    """
    local = os.path.expanduser(source)
    if os.path.exists(local):
        return Fetched(path=local, origin="local")
    target = _target(source, cache_subdir)
    stream = stream if stream is not None else sys.stderr
    os.makedirs(target.folder, exist_ok=True)
    with _cache_lock(target.folder):
        try:
            return _resolve_locked(target, hint, progress, timeout, stream)
        finally:
            _remove_empty_url_folder(target)


def fetch(source: str, **kwargs) -> str:
    """The local path of a weights file given by path, known name or URL (see :func:`resolve`)."""
    return resolve(source, **kwargs).path

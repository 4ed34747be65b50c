"""Weight files by path, name or URL: a verified download cache.

:func:`fetch` turns what a user wrote into a local file:

- an existing path is returned as it is (a local file keeps working everywhere a name works);
- a known name (:mod:`keras_retinanet.hub.registry`) or an http(s)/file URL is looked up in the cache
  ``$KERAS_RETINANET_HOME/weights/`` (default ``$XDG_CACHE_HOME/keras_retinanet``, else
  ``~/.cache/keras_retinanet``) and downloaded there when missing.

A download goes to ``<file>.part`` and is renamed to ``<file>`` only once it is complete and its
checksum matches, so an interrupted or corrupt download never sits in the cache (a stale ``.part``
from a killed process is overwritten). A file with a published hash is checked against it, on
download and each time it is used from the cache; one without (e.g. keras-retinanet's COCO model)
is pinned: the SHA-256 of its first download is stored as ``<file>.sha256`` and checked later.
A URL may carry its own hash as ``#md5=<hex>`` or ``#sha256=<hex>``.

``$KERAS_RETINANET_MIRROR`` (a base URL, e.g. ``https://mirror.example.com/weights`` or
``file:///shared/weights``) replaces the origin: the file is fetched from ``$MIRROR/<file name>``
and verified as if it came from the origin. urllib's usual ``https_proxy`` variables also apply.
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
from typing import Iterator, Optional, TextIO, Tuple

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
PART_SUFFIX = ".part"
PIN_SUFFIX = ".sha256"
CHUNK_BYTES = 1 << 16
# Seconds a connection attempt or a silent read may take: offline fails within seconds, not minutes.
DEFAULT_TIMEOUT = 20.0
USER_AGENT = "keras-retinanet-weights-fetch"
URL_SCHEMES = ("http", "https", "file")


class DownloadError(RetinaNetError):
    """A download that failed: names the URL and the local alternatives."""


class ChecksumError(DownloadError, ValueError):
    """A file whose hash is not the expected one: names the file, the expected and the found hash."""


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


def _split_url(url: str) -> Tuple[str, str, Optional[str]]:
    """(URL without fragment, file name, hash from a '#md5=' / '#sha256=' fragment or None)."""
    parts = urllib.parse.urlsplit(url)
    file_hash = None
    algorithm, _, digest = parts.fragment.partition("=")
    if algorithm.lower() in ("md5", "sha256") and digest:
        file_hash = digest.lower()
    bare = urllib.parse.urlunsplit(parts._replace(fragment=""))
    file_name = urllib.parse.unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    if not file_name or file_name in (".", ".."):
        raise DownloadError(f"URL '{url}' does not end in a file name")
    return bare, file_name, file_hash


def _unknown(source: str) -> UnknownWeightsError:
    looks_like_path = os.sep in source or "/" in source or source.lower().endswith((".h5", ".hdf5", ".keras"))
    what = f"no such file '{source}'" if looks_like_path else f"'{source}' is not a file, a URL or a known weights name"
    return UnknownWeightsError(f"{what}; known names: {', '.join(weights_names())}")


def is_known_source(source: str) -> bool:
    """Whether :func:`fetch` can work on ``source``: an existing path, a URL or a known name (no download)."""
    return os.path.exists(os.path.expanduser(source)) or is_url(source) or find(source) is not None


def check_source(source: str) -> None:
    """Raise the error :func:`fetch` would for a source that is no file, URL or known name; never downloads."""
    if not is_known_source(source):
        raise _unknown(source)


def file_digest(path: str, algorithm: str) -> str:
    """Hex digest of a file ('md5' or 'sha256'), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_algorithm(file_hash: str) -> str:
    return "md5" if len(file_hash) == 32 else "sha256"


def _expected_hash(path: str, file_hash: Optional[str]) -> Tuple[Optional[str], bool]:
    """(the hash ``path`` must have, whether it is a first-download pin): the published one, else the
    pin ``<path>.sha256``, else None (nothing to check against yet)."""
    if file_hash is not None:
        return file_hash.lower(), False
    pin = path + PIN_SUFFIX
    if os.path.isfile(pin):
        with open(pin) as handle:
            return handle.read().strip().lower(), True
    return None, False


def _mismatch(path: str, expected: Optional[str]) -> Optional[Tuple[str, str]]:
    """None when ``path`` has the ``expected`` hash (or there is none), else (algorithm, found)."""
    if expected is None:
        return None
    algorithm = _hash_algorithm(expected)
    found = file_digest(path, algorithm)
    return None if found == expected else (algorithm, found)


def _pin(path: str, file_hash: Optional[str]) -> None:
    """Record the SHA-256 of a file that has no published hash, unless pinned already."""
    pin = path + PIN_SUFFIX
    if file_hash is None and not os.path.isfile(pin):
        with open(pin + PART_SUFFIX, "w") as handle:
            handle.write(file_digest(path, "sha256") + "\n")
        os.replace(pin + PART_SUFFIX, pin)


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


def _target(source: str) -> Tuple[str, str, Optional[str], Optional[WeightsEntry]]:
    """(origin URL, file name, expected hash or None, registry entry or None) of a name or URL."""
    if is_url(source):
        url, file_name, file_hash = _split_url(source)
        entry = next((e for e in REGISTRY.values() if e.url == url), None)  # a known file by its URL
        if entry is not None and file_hash is None:
            file_hash = entry.file_hash
        return url, file_name, file_hash, entry
    entry = find(source)
    if entry is None:
        raise _unknown(source)
    return entry.url, entry.file_name, entry.file_hash, entry


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
        source: a path, a registry name (:func:`keras_retinanet.hub.weights_names`) or a URL.
        cache_subdir: the cache folder below :func:`home`.
        hint: what else the user can do when the download fails (e.g. '--no-weights'), added to the message.
        progress: draw a progress bar while downloading.
        timeout: seconds a connection or a read may stall before the download fails.
        stream: where the progress bar goes (default ``sys.stderr``), and notes (default: the package's logger).

    Returns:
        a :class:`Fetched` (the path and whether it was a local file, cached or downloaded).

    Raises:
        UnknownWeightsError: not a file, a URL or a known name (the message lists the names).
        DownloadError: the download failed; the message names the URL and the alternatives.
        ChecksumError: the downloaded file has another hash; it was deleted.
    """
    local = os.path.expanduser(source)
    if os.path.exists(local):
        return Fetched(path=local, origin="local")
    origin_url, file_name, file_hash, entry = _target(source)
    name = entry.name if entry is not None else None
    folder = cache_dir(cache_subdir)
    path = os.path.join(folder, file_name)
    url = mirror_url(file_name) or origin_url
    note_stream, stream = stream, (stream if stream is not None else sys.stderr)
    os.makedirs(folder, exist_ok=True)
    with _cache_lock(folder):
        expected, pinned = _expected_hash(path, file_hash)
        if os.path.isfile(path):
            if _mismatch(path, expected) is None:
                _pin(path, file_hash)
                logger.debug(f"{source}: the cached {path}, checksum verified")
                return Fetched(path=path, origin="cache", url=url, name=name)
            note = f"The cached {path} fails its checksum; downloading it again"
            if note_stream is None:
                logger.warning(note)
            else:
                note_stream.write(note + "\n")
            os.remove(path)
        part = path + PART_SUFFIX
        try:
            _download(url, part, file_name, timeout, progress, stream)
        except DownloadError as error:
            via = f" (mirror of {origin_url})" if url != origin_url else ""
            alternatives = f"put {file_name} at {path}, or set {ENV_MIRROR} to a base URL that serves it"
            raise DownloadError(
                f"could not download {name or file_name} from {url}{via}: {error}. "
                f"Without internet access: {alternatives}; {hint or 'or pass the local path of the file instead'}"
            ) from None
        mismatch = _mismatch(part, expected)
        if mismatch is not None:
            os.remove(part)
            algorithm, found = mismatch
            source_of_hash = ""
            if pinned:
                source_of_hash = f" (pinned at its first download in {path}{PIN_SUFFIX}; delete that to accept it)"
            raise ChecksumError(
                f"{file_name} downloaded from {url} failed its {algorithm} check: expected {expected}{source_of_hash}, "
                f"found {found}; the download was deleted"
            )
        os.replace(part, path)
        _pin(path, file_hash)
    return Fetched(path=path, origin="download", url=url, name=name)


def fetch(source: str, **kwargs) -> str:
    """The local path of a weights file given by path, known name or URL (see :func:`resolve`)."""
    return resolve(source, **kwargs).path

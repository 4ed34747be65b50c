"""Weight files by path, name or URL: :func:`resolve` and :func:`fetch` turn what a user wrote into a local file.

- an existing path is returned as it is (a local file keeps working everywhere a name works);
- a known name (:mod:`keras_retinanet.hub.registry`) or an http(s)/file URL is looked up in the cache (its place:
  :mod:`keras_retinanet.hub.cache`) and downloaded there when missing.

A download goes to ``<file>.part`` and is renamed to ``<file>`` only once it is complete and its
checksum matches, so an interrupted or corrupt download never sits in the cache (a stale ``.part``
from a killed process is overwritten). A file with a published hash is checked against it, on
download and each time it is used from the cache; a URL's own ``#sha256=<hex>`` (or ``md5``, ``sha1``, ``sha224``,
``sha384``, ``sha512``) the same way, and a fragment that is no such hash is an error rather than ignored. A file
with neither (e.g. keras-retinanet's COCO model) is pinned on first use (:mod:`keras_retinanet.hub.checksums`),
and a warning says so once, with the hash and how to check it.

Files cached by versions before 1.2.0, which keyed the cache by file name alone, sit at ``weights/<file
name>`` whatever their source. A known name's file there is used when its published hash verifies; one
without a published hash carries an old pin (the hash alone, no file name) that may come from another URL
of the same file name, so it is downloaded again from its source. Old files of other URLs are never
looked at again.

Known names are fetched from ``$KERAS_RETINANET_MIRROR`` when it is set; urllib's usual ``https_proxy`` variables
also apply.
"""

import contextlib
import dataclasses
import http.client
import logging
import os
import sys
import urllib.error
import urllib.request
from typing import Iterator, Optional, TextIO

from ..errors import RetinaNetError
from .cache import CACHE_SUBDIR, ENV_MIRROR, Target, target_of
from .checksums import PIN_SUFFIX, Checksum, file_digest, first_mismatch, read_pin, write_pin
from .progress import Progress

try:  # POSIX: processes sharing a cache (workers of one machine) download one at a time
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; downloads then race, each atomic
    fcntl = None

logger = logging.getLogger(__name__)

PART_SUFFIX = ".part"
CHUNK_BYTES = 1 << 16
# Seconds a connection attempt or a silent read may take: offline fails within seconds, not minutes.
DEFAULT_TIMEOUT = 20.0
USER_AGENT = "keras-retinanet-weights-fetch"


class DownloadError(RetinaNetError):
    """A download that failed: names the URL and the local alternatives."""


class ChecksumError(DownloadError, ValueError):
    """A file whose hash is not the expected one: names the URL, the expected and the found hash."""


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


def _warn_pinned(target: Target, digest: str, how: str) -> None:
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
    # An opener of its own, not urlopen's shared one: that one keeps the proxies of the process's first
    # download, so a proxy set or removed later (a notebook, a test) would be ignored.
    opener = urllib.request.build_opener()
    bar = None
    complete = False
    try:
        with opener.open(request, timeout=timeout) as response, open(part, "wb") as out:
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


def _remove_empty_url_folder(target: Target) -> None:
    """Remove ``url/<key>/`` (and ``url/``) when a failed download left them empty."""
    if target.entry is not None:
        return
    folder = os.path.dirname(target.path)
    for empty in (folder, os.path.dirname(folder)):
        try:
            os.rmdir(empty)
        except OSError:  # not empty (or gone): nothing to tidy
            return


def _from_cache(target: Target, pin: Optional[Checksum]) -> Optional[Fetched]:
    """The cached file when it passes its checks; None when it must be downloaded (a damaged one is deleted)."""
    path = target.path
    own = [checksum for checksum in (target.published, pin) if checksum is not None]
    failed = first_mismatch(path, own)
    if failed is not None:
        logger.warning(f"The cached {path} fails its {failed[0].algorithm} check; downloading it again")
        os.remove(path)
        return None
    if target.given is not None:
        failed = first_mismatch(path, [target.given])
        if failed is not None:  # it is kept unless a download with the given hash replaces it
            logger.warning(
                f"The cached {path} has {failed[0].algorithm} {failed[1]}, not the {failed[0].digest} given in the "
                f"URL; downloading it again"
            )
            return None
    if target.published is None and pin is None:  # put there by hand (or an old pin the given hash replaces)
        digest = file_digest(path, "sha256")
        write_pin(path, digest)
        if target.given is None:
            _warn_pinned(target, digest, "the file found in the cache")
    logger.debug(f"{target.label}: the cached {path}, checksum verified")
    return Fetched(path=path, origin="cache", url=target.url, name=target.entry.name if target.entry else None)


def _resolve_locked(target: Target, hint: Optional[str], progress: bool, timeout: float,
                    stream: Optional[TextIO]) -> Fetched:  # fmt: skip
    path, url = target.path, target.url
    pin, old_pin = None, None
    if target.published is None:
        read = read_pin(path)
        if read is not None and read[1] and target.entry is not None:
            if target.given is None:  # the file name alone keyed the cache then: its source is unknown
                old_pin = path + PIN_SUFFIX
        elif read is not None:
            pin = Checksum("sha256", read[0], "pinned")
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
    failed = first_mismatch(part, explicit or ([pin] if pin is not None else []))
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
            write_pin(path, digest)
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
    target = target_of(source, cache_subdir)
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

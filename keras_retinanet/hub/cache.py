"""Where a weights source lives in the cache: the cache folder, a URL's key, and what a name or URL is checked against.

The cache is ``$KERAS_RETINANET_HOME/weights/`` (default ``$XDG_CACHE_HOME/keras_retinanet``, else
``~/.cache/keras_retinanet``). Each source has its own place in it, so that two sources never share a file: a known
name (or its published URL) lives at ``weights/<file name>``, its published name; any other URL at
``weights/url/<key>/<file name>``, where the key is the first 16 hex digits of the SHA-256 of the URL without its
``#fragment`` (:func:`cache_path` tells the place). ``https://a/model.h5`` and ``https://b/model.h5`` are two files.

``$KERAS_RETINANET_MIRROR`` (a base URL, e.g. ``https://mirror.example.com/weights`` or ``file:///shared/weights``)
replaces the origin of known names: the file is fetched from ``$MIRROR/<file name>`` and verified as if it came from
the origin (a URL is always fetched from itself).
"""

import dataclasses
import hashlib
import os
import urllib.parse
from typing import Optional, Tuple

from .checksums import URL_HASH_DIGITS, Checksum
from .registry import REGISTRY, UnknownWeightsError, WeightsEntry, find, weights_names

ENV_HOME = "KERAS_RETINANET_HOME"
ENV_MIRROR = "KERAS_RETINANET_MIRROR"
CACHE_SUBDIR = "weights"
URL_SUBDIR = "url"  # weights/url/<key>/<file name>: files of URLs that are no known name's
URL_KEY_DIGITS = 16  # hex digits of the URL's SHA-256 in its folder name (64 bits)
URL_SCHEMES = ("http", "https", "file")


class SourceError(UnknownWeightsError):
    """A URL that cannot be used as written: no file name at its end, or a fragment that is no valid hash."""


@dataclasses.dataclass(frozen=True)
class Target:
    """A name or URL: where it comes from, where the cache keeps it and what it is checked against."""

    origin_url: str  # without its fragment
    file_name: str
    folder: str  # the cache folder (locked while downloading)
    path: str  # the file's place in the cache
    entry: Optional[WeightsEntry]
    published: Optional[Checksum]
    given: Optional[Checksum]

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


def split_url(url: str) -> Tuple[str, str, Optional[Checksum]]:
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
        given = Checksum(algorithm, digest, "given")
    bare = urllib.parse.urlunsplit(parts._replace(fragment=""))
    file_name = urllib.parse.unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    if not file_name or file_name in (".", ".."):
        raise SourceError(f"URL '{url}' does not end in a file name")
    return bare, file_name, given


def unknown_source(source: str) -> UnknownWeightsError:
    """The error for a source that is no file, URL or known name: what it looks like, and the known names."""
    looks_like_path = os.sep in source or "/" in source or source.lower().endswith((".h5", ".hdf5", ".keras"))
    what = f"no such file '{source}'" if looks_like_path else f"'{source}' is not a file, a URL or a known weights name"
    return UnknownWeightsError(f"{what}; known names: {', '.join(weights_names())}")


def is_known_source(source: str) -> bool:
    """Whether :func:`keras_retinanet.hub.fetch` can work on ``source``: an existing path, a URL or a known name
    (no download)."""
    return os.path.exists(os.path.expanduser(source)) or is_url(source) or find(source) is not None


def check_source(source: str) -> None:
    """Raise the error :func:`keras_retinanet.hub.fetch` would for a source that is no file, URL or known name, or a
    URL with a malformed hash (:class:`SourceError`); never downloads."""
    if not is_known_source(source):
        raise unknown_source(source)
    if is_url(source) and not os.path.exists(os.path.expanduser(source)):
        split_url(source)


def target_of(source: str, cache_subdir: str = CACHE_SUBDIR) -> Target:
    """Where a name or URL comes from, where the cache keeps it and its published or given hash."""
    if is_url(source):
        origin_url, file_name, given = split_url(source)
        entry = next((e for e in REGISTRY.values() if e.url == origin_url), None)  # a known file by its URL
    else:
        entry = find(source)
        if entry is None:
            raise unknown_source(source)
        origin_url, file_name, given = entry.url, entry.file_name, None
    folder = cache_dir(cache_subdir)
    if entry is not None:  # a known name: its published file name, readable, as before 1.2.0
        file_name = entry.file_name
        path = os.path.join(folder, file_name)
    else:
        path = os.path.join(folder, URL_SUBDIR, url_key(origin_url), file_name)
    published = None
    if entry is not None and entry.file_hash is not None:
        published = Checksum(entry.hash_algorithm, entry.file_hash.lower(), "published")
    return Target(origin_url, file_name, folder, path, entry, published, given)


def cache_path(source: str, *, cache_subdir: str = CACHE_SUBDIR) -> str:
    """The place in the cache of a known name's or a URL's file (whether it is there or not; nothing is fetched).

    A known name (or its published URL) has ``<cache>/<file name>``; any other URL
    ``<cache>/url/<16 hex digits of the URL's SHA-256>/<file name>``, the URL taken without its ``#fragment``.

    Raises:
        UnknownWeightsError: not a URL or a known name; SourceError: a URL ending in no file name or with a
            malformed hash.
    """
    return target_of(source, cache_subdir).path

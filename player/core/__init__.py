"""The player session: commands, controller, narration scheduler, live perception adapter, settings."""

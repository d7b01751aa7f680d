"""Sound: speech engines, the speech player, and the dialogue scan of the soundtrack."""

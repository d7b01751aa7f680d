"""Media files: libmpv playback, checks on a file, and the muxer that writes described copies."""

"""Video Narrator's desktop player: Qt window, libmpv playback, speech and keys.

The player talks to the narration brain in ``models`` only through its public API and never
imports torch, mediapipe or llama_cpp.
"""

__version__ = "0.1.0"

"""Whether the screen named by the environment can really be used.

``DISPLAY`` can name an X server that is gone (a closed remote session, a stopped Xvfb, an
old value in a terminal multiplexer). Qt then aborts the whole process with a message about
missing libraries; asking libxcb first lets the player say what is wrong and play in the
terminal instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from pathlib import Path


def screen_problem() -> str:
    """"" when a window can be opened on the screen the environment names, else why not
    (also when it names none)."""
    if not sys.platform.startswith("linux"):
        return ""
    return _problem(os.environ.get("DISPLAY", ""), os.environ.get("WAYLAND_DISPLAY", ""))


@functools.lru_cache(maxsize=8)
def _problem(display: str, wayland: str) -> str:
    """screen_problem() for these names, asked once a run (an X server that cannot be reached
    over the network can take a while to say so)."""
    if wayland and _wayland_socket(wayland).exists():
        return ""
    if not display:
        if wayland:
            return f"the Wayland display {wayland} cannot be reached"
        return "no display found"
    if _x_reachable(display):
        return ""
    return f"the display {display} cannot be reached"


def _wayland_socket(name: str) -> Path:
    if os.path.isabs(name):
        return Path(name)
    return Path(os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")) / name


def _x_reachable(display: str) -> bool:
    """Connect to the X server with libxcb, as Qt would, and hang up. Without libxcb the
    answer is left to Qt (True), which then names the library to install."""
    name = ctypes.util.find_library("xcb")
    if name is None:
        return True
    try:
        xcb = ctypes.CDLL(name)
    except OSError:
        return True
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        return bool(connection) and xcb.xcb_connection_has_error(connection) == 0
    finally:
        if connection:
            xcb.xcb_disconnect(connection)

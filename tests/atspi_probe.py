"""Read an application's accessibility tree over AT-SPI, as Orca does. Run with Debian's
/usr/bin/python3 (pyatspi is a system package); prints one JSON object.

    atspi_probe.py APP_NAME [--press NAME] [--listen SECONDS]

--press performs the default action of the first push button with that name (what a screen
reader user does with Enter on it); --listen collects the announcements and text changes the
application sends for that long after the press.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import pyatspi  # type: ignore[import-not-found]
from gi.repository import GLib  # type: ignore[import-not-found]


def find_app(name: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desktop = pyatspi.Registry.getDesktop(0)
        for app in desktop:
            if app is not None and app.name == name:
                return app
        time.sleep(0.2)
    return None


def walk(node, depth=0, out=None):
    out = [] if out is None else out
    if node is None or depth > 40:
        return out
    try:
        role = node.getRoleName()
        entry = {"role": role, "name": node.name or "", "description": node.description or ""}
        labels = []
        for rel in node.getRelationSet():
            if rel.getRelationType() == pyatspi.RELATION_LABELLED_BY:
                labels += [rel.getTarget(i).name for i in range(rel.getNTargets())]
        entry["labelled_by"] = labels
        states = node.getState()
        entry["focusable"] = states.contains(pyatspi.STATE_FOCUSABLE)
        if role in ("text", "label", "status bar"):
            try:
                text = node.queryText()
                entry["text"] = text.getText(0, text.characterCount)
            except NotImplementedError:
                pass
        out.append(entry)
        for child in node:
            walk(child, depth + 1, out)
    except Exception as exc:  # noqa: BLE001 - a vanished node must not end the walk
        out.append({"role": "error", "name": str(exc)})
    return out


def find_node(node, role: str, name: str):
    if node is None:
        return None
    try:
        if node.getRoleName() == role and node.name == name:
            return node
        for child in node:
            found = find_node(child, role, name)
            if found is not None:
                return found
    except Exception:  # noqa: BLE001
        return None
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("app")
    ap.add_argument("--press")
    ap.add_argument("--listen", type=float, default=0.0)
    args = ap.parse_args()
    app = find_app(args.app)
    if app is None:
        print(json.dumps({"error": f"no application named {args.app!r} on the AT-SPI bus"}))
        return 1
    result: dict = {"tree": walk(app)}
    events: list[dict] = []

    def on_event(event) -> None:
        try:
            source = event.source.name if event.source is not None else ""
        except Exception:  # noqa: BLE001
            source = ""
        events.append({"type": event.type, "source": source,
                       "data": str(event.any_data) if event.any_data is not None else ""})

    if args.listen:
        for kind in ("object:announcement", "object:text-changed:insert",
                     "object:property-change:accessible-name"):
            pyatspi.Registry.registerEventListener(on_event, kind)
    if args.press:
        button = find_node(app, "push button", args.press)
        if button is None:
            result["press"] = "not found"
        else:
            action = button.queryAction()
            names = [action.getName(i) for i in range(action.nActions)]
            result["press"] = names[0] if names else "no action"
            action.doAction(0)
    if args.listen:
        loop = GLib.MainLoop()
        threading.Timer(args.listen, loop.quit).start()
        loop.run()
        result["events"] = events
        result["tree_after"] = walk(app)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

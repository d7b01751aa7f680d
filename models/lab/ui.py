"""``narrate lab ui``: the MLflow interface on 127.0.0.1, over the lab's tracking store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from models.lab import LabError, need
from models.lab.tracking import is_local, lab_dir, tracking_uri


def server_command(port: int, uri: str) -> list[str]:
    """The MLflow server command for a local store (artifacts served from the lab folder)."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    if is_local(uri):
        command += ["--artifacts-destination", (lab_dir() / "artifacts").as_uri()]
    return command


def serve(port: int, say: Callable[[str], None] = print) -> int:
    """Start the interface and wait; Ctrl-C stops it. A server named by MLFLOW_TRACKING_URI is
    not started again: its address is said."""
    need("mlflow")
    if not 0 < port < 65536:
        raise LabError(f"A port is a number from 1 to 65535, not {port}.")
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        say(f"Runs are on the MLflow server at {uri}; open that address in a browser.")
        return 0
    log = lab_dir() / "mlflow-ui.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as handle:
        # a session of its own: its workers are stopped with it, as one group
        process = subprocess.Popen(server_command(port, uri), stdout=handle, stderr=handle,
                                   start_new_session=True)
    try:
        time.sleep(1.0)
        if process.poll() is not None:
            lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            raise LabError(f"The MLflow interface did not start ({log} says: "
                           f"{(lines or ['nothing'])[-1][:300]}).")
        say(f"The MLflow interface is at http://127.0.0.1:{port}/ (runs from {uri}). "
            f"Press Ctrl+C to stop it.")
        try:
            process.wait()
        except KeyboardInterrupt:
            say("Stopping the MLflow interface.")
            stop(process)
            return 0
        return 0 if process.returncode == 0 else 1
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """Stop the server and its workers: SIGTERM, then SIGKILL, to its group."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    try:  # workers left in the group after the server itself ended
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass

"""A crash-safe first look at an HDF5 file.

libhdf5 can crash the whole process (a segmentation fault) on some corrupted files,
where no Python exception could be caught. Before nirsim opens a user's file in its
own process, :func:`probe` has a helper process read every object of it once; a file
that kills the helper (or hangs it) is refused with a :class:`~nirsim.NirsimError`
instead. The helper is started on first use and kept for later files (starting
Python with h5py takes a few tenths of a second; a probe of a small file then takes
milliseconds); it is replaced after a crash.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading

# Reads every attribute and dataset of each file named on stdin (one JSON string per
# line) and answers "ok" (exceptions are fine here: the caller's own read reports
# them); only a crash or a hang of this process matters.
_SERVER = r"""
import json
import sys

import h5py


def visit(group, depth):
    if depth > 64:
        return
    for name in list(group.attrs):
        try:
            group.attrs[name]
        except Exception:
            pass
    try:
        keys = list(group.keys())
    except Exception:
        return
    for key in keys:
        try:
            item = group[key]
        except Exception:
            continue
        if isinstance(item, h5py.Group):
            visit(item, depth + 1)
        elif isinstance(item, h5py.Dataset):
            try:
                item[()]
                for name in list(item.attrs):
                    item.attrs[name]
            except Exception:
                pass


for line in sys.stdin:
    try:
        with h5py.File(json.loads(line), "r") as f:
            visit(f, 0)
    except Exception:
        pass
    sys.stdout.write("ok\n")
    sys.stdout.flush()
"""

#: Seconds one file may take before it is called unreadable (the first call also
#: starts the helper).
PROBE_TIMEOUT = 60.0

_lock = threading.Lock()
_server: subprocess.Popen | None = None
_owner = 0  # pid of the process that started the helper (a forked child starts its own)


def _stop() -> None:
    global _server
    proc, _server = _server, None
    if proc is None or _owner != os.getpid():
        return
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=2)
    except Exception:
        proc.kill()
        proc.wait()
    finally:
        if proc.stdout:
            proc.stdout.close()


atexit.register(_stop)


def _start() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )


def _ask(path: str) -> tuple[bool, str]:
    """Probe with the kept helper: (True, "") or (False, reason)."""
    global _server, _owner
    if _server is not None and _owner != os.getpid():
        _server = None  # inherited through fork: the parent's helper, not ours
    if _server is None or _server.poll() is not None:
        _stop()
        _server, _owner = _start(), os.getpid()
    proc = _server
    try:
        proc.stdin.write(json.dumps(path) + "\n")
        proc.stdin.flush()
    except OSError:  # the helper died before the request: restart once
        _stop()
        _server = proc = _start()
        _owner = os.getpid()
        proc.stdin.write(json.dumps(path) + "\n")
        proc.stdin.flush()
    ready, _, _ = select.select([proc.stdout], [], [], PROBE_TIMEOUT)
    if not ready:
        proc.kill()
        _stop()
        return False, f"reading it did not finish in {PROBE_TIMEOUT:.0f} s"
    answer = proc.stdout.readline()
    if answer.strip() == "ok":
        return True, ""
    code = proc.wait()
    _stop()
    how = f"signal {-code}" if code < 0 else f"exit status {code}"
    return False, f"the HDF5 library crashed reading it, {how}"


def _ask_once(path: str) -> tuple[bool, str]:
    """Probe with a fresh process (platforms without select on pipes)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _SERVER],
            input=json.dumps(path) + "\n",
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"reading it did not finish in {PROBE_TIMEOUT:.0f} s"
    if proc.returncode == 0 and proc.stdout.strip() == "ok":
        return True, ""
    code = proc.returncode
    how = f"signal {-code}" if code < 0 else f"exit status {code}"
    return False, f"the HDF5 library crashed reading it, {how}"


def probe(path: str | os.PathLike, error: type[Exception]) -> None:
    """Raise ``error`` (a NirsimError subclass) if reading ``path`` with h5py
    crashes or hangs a helper process; return silently otherwise (the caller then
    reads the file itself and reports ordinary read errors)."""
    given = os.fspath(path)
    full = os.path.abspath(given)
    with _lock:
        ok, reason = _ask(full) if os.name == "posix" else _ask_once(full)
    if not ok:
        raise error(f"{given}: corrupted HDF5 file ({reason})")

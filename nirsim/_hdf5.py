"""A crash-safe first look at an HDF5 file.

libhdf5 can crash the whole process (a segmentation fault) on some corrupted files,
where no Python exception could be caught. Before nirsim opens a user's file in its
own process, :func:`probe` reads every object of it once in a child process; a file
that kills the child is refused with a :class:`~nirsim.NirsimError` instead.
"""

from __future__ import annotations

import os
import subprocess
import sys

# Reads every attribute and dataset (exceptions are fine here: the caller's own read
# reports them); only a crash or a hang of this child matters.
_PROBE = r"""
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

try:
    f = h5py.File(sys.argv[1], "r")
except Exception:
    sys.exit(0)
with f:
    visit(f, 0)
"""

#: Seconds the child may take before the file is called unreadable.
PROBE_TIMEOUT = 60.0


def probe(path: str | os.PathLike, error: type[Exception]) -> None:
    """Raise ``error`` (a NirsimError subclass) if reading ``path`` with h5py
    crashes or hangs a child process; return silently otherwise."""
    path = os.fspath(path)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, path],
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise error(
            f"{path}: corrupted HDF5 file (reading it did not finish in "
            f"{PROBE_TIMEOUT:.0f} s)"
        ) from None
    if proc.returncode < 0:
        raise error(
            f"{path}: corrupted HDF5 file (the HDF5 library crashed reading it, "
            f"signal {-proc.returncode})"
        )
    if proc.returncode > 0:
        last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise error(f"{path}: unreadable HDF5 file ({''.join(last) or 'no reason given'})")

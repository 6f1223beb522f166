"""Stale Snakemake locks after a kill -9: a rerun clears the locks only when the run that took them is
known to be dead.

Snakemake writes .snakemake/locks/ when a run starts and deletes them when it ends; a run killed with
SIGKILL (or a power loss) leaves them, and the next run stops with a LockException until someone runs
``snakemake --unlock``. Its lock files do not say who holds them, so the workflow records its own
owner (host and process id) once it holds the lock (``record_owner``, from onstart) and a later run
on the same host clears the locks (``clear_stale_locks``, while the Snakefile is parsed, before
Snakemake checks them) when that process is gone. Locks of an unknown owner, of a live process or
of another host (a shared file system) are left alone: then Snakemake's own message applies.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

OWNER = Path(".snakemake") / "fewlabels_lock_owner.json"
LOCKS = Path(".snakemake") / "locks"


def record_owner(workdir: Path | str = ".") -> None:
    """Note this process as the holder of the working directory's locks."""
    path = Path(workdir) / OWNER
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    tmp.replace(path)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running Snakemake (a reused pid running something else counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, and not ours to judge
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # Linux: also check that it is still a snakemake
        try:
            return b"snakemake" in cmdline.read_bytes()
        except OSError:
            return True
    return True


def clear_stale_locks(workdir: Path | str = ".") -> list[Path]:
    """Delete the locks left by a dead run of this workflow on this host; returns the files deleted."""
    workdir = Path(workdir)
    locks = sorted((workdir / LOCKS).glob("*.lock")) if (workdir / LOCKS).is_dir() else []
    if not locks or not (workdir / OWNER).exists():
        return []
    try:
        owner = json.loads((workdir / OWNER).read_text())
        host, pid = owner["host"], int(owner["pid"])
    except (ValueError, KeyError, TypeError):
        return []
    if host != socket.gethostname() or pid == os.getpid() or _alive(pid):
        return []
    for lock in locks:
        lock.unlink(missing_ok=True)
    (workdir / OWNER).unlink(missing_ok=True)
    return locks

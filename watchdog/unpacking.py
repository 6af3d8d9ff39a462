"""The one-file build's temporary folders: clean what a killed start left behind.

``dist/rainbond-watchdog`` unpacks itself at every start, twice: staticx's loader into
``$TMPDIR/staticx-XXXXXX`` (told to the program as ``$STATICX_BUNDLE_DIR``), then PyInstaller's
into ``$TMPDIR/_MEIxxxxxx`` (``sys._MEIPASS``). Each loader removes its folder when its program
ends, but not when it is killed with SIGKILL. At the next start the program removes such
leftovers: folders of those two names in the same temporary folder, owned by this user,
unchanged for ``min_age`` seconds, and used by no running process (no process runs a file
from them or has one mapped). The age keeps a start that has just made its folder safe from
another start's cleaning. Nothing here runs outside the one-file build.
"""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PREFIXES = ("staticx-", "_MEI")
MIN_AGE_SECONDS = 60.0
"""A loader unpacks in well under a second; a folder unchanged this long that no process uses is a leftover."""


@dataclass(frozen=True)
class Candidate:
    path: str
    uid: int
    mtime: float


def unpack_dirs(env: Mapping[str, str], meipass: str | None) -> list[str]:
    """The folders this start was unpacked into (none when not run from the one-file build)."""
    found = [env.get("STATICX_BUNDLE_DIR", ""), meipass or ""]
    return [os.path.normpath(p) for p in found if p and os.path.basename(os.path.normpath(p)).startswith(PREFIXES)]


def stale(candidates: Iterable[Candidate], in_use: Iterable[str], own: Iterable[str], uid: int, now: float,
          min_age: float = MIN_AGE_SECONDS) -> list[str]:
    """Pure: which candidate folders are leftovers (old enough, ours, not used, not this start's)."""
    busy = {os.path.normpath(p) for p in (*in_use, *own)}
    return sorted(c.path for c in candidates
                  if c.uid == uid and now - c.mtime >= min_age and os.path.normpath(c.path) not in busy)


def list_candidates(parent: str) -> list[Candidate]:
    out: list[Candidate] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return out
    for name in names:
        if name.startswith(PREFIXES):
            path = os.path.join(parent, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                out.append(Candidate(path, st.st_uid, st.st_mtime))
    return out


def folders_in_use(candidates: Iterable[str], proc: str = "/proc") -> set[str]:
    """The candidate folders some running process uses: its program or a mapped file is inside."""
    roots = [p.rstrip("/") + "/" for p in candidates]
    used: set[str] = set()
    if not roots:
        return used
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return {r.rstrip("/") for r in roots}  # cannot tell: clean nothing
    for pid in pids:
        paths: list[str] = []
        try:
            paths.append(os.readlink(f"{proc}/{pid}/exe"))
        except OSError:
            pass
        try:
            with open(f"{proc}/{pid}/maps", encoding="utf-8", errors="replace") as fh:
                paths += [line.split(None, 5)[5].strip() for line in fh if line.count(" ") >= 5 and "/" in line]
        except (OSError, IndexError):
            pass
        for path in paths:
            for root in roots:
                if path.startswith(root):
                    used.add(root.rstrip("/"))
    return used


def clean_leftovers(now: float, env: Mapping[str, str] | None = None, meipass: str | None = None,
                    uid: int | None = None) -> list[str]:
    """Remove the leftovers beside this start's unpacked folders; return what was removed."""
    env = os.environ if env is None else env
    meipass = getattr(sys, "_MEIPASS", None) if meipass is None else meipass
    own = unpack_dirs(env, meipass)
    if not own:
        return []
    uid = os.geteuid() if uid is None else uid
    candidates = [c for parent in sorted({os.path.dirname(p) for p in own}) for c in list_candidates(parent)]
    old = stale(candidates, (), own, uid, now)
    removed = []
    for path in stale(candidates, folders_in_use(old), own, uid, now):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
    return removed

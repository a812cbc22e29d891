"""One way to write a file or a folder so that no reader ever sees half of it: a uniquely named
temporary file or folder beside the target, then a rename. The result gets the permissions the
umask allows, as an ordinary `open(path, "w")` or `os.mkdir` would give it (`mkstemp` and
`mkdtemp` alone make it owner-only)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """`with open_atomic(path) as f: f.write(...)`: `path` appears whole when the block ends,
    and not at all if it raises. `mode` is "w" (text, UTF-8) or "wb"."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_atomic writes with mode 'w' or 'wb', not {mode!r}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically."""
    with open_atomic(path) as f:
        f.write(text)


@contextlib.contextmanager
def folder(path: str | os.PathLike) -> Iterator[str]:
    """`with folder(path) as tmp: ...write files into tmp...`: when the block ends, `tmp` is
    renamed to `path`, replacing whatever folder was there; if the block raises, `tmp` is removed
    and `path` is left as it was. Readers see the old folder, then (for the instant between two
    renames) none, then the new one whole; never a mix."""
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: str, path: str) -> None:
    """Renames folder `tmp` to `path`; an old `path` is moved aside first, then deleted."""
    if not os.path.lexists(path):
        os.replace(tmp, path)
        return
    parent, name = os.path.split(path)
    trash = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
    os.replace(path, os.path.join(trash, "old"))
    os.replace(tmp, path)
    shutil.rmtree(trash, ignore_errors=True)

"""Watches the config file and calls back when it changed (Kubernetes swaps a ConfigMap's
symlink, so the file's identity is compared, not only its time)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("sidecar.config.watch")


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of a file, following symlinks; None when it cannot be read."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


async def watch_config_file(path: Path, interval: float, changed: Callable[[], object]) -> None:
    """Check `path` every `interval` seconds, forever; call `changed` when it changed."""
    last = file_signature(path)
    while True:
        await asyncio.sleep(interval)
        current = file_signature(path)
        if current != last and current is not None:
            last = current
            log.info("config file changed", extra={"path": str(path)})
            changed()

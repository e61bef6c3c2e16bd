"""The admin token: read from a file (in Kubernetes a mounted Secret), never from the config
itself, so it never sits in a ConfigMap, a flag or the process's command line.

The file is read at start-up (a missing, unreadable or empty file stops the sidecar with one
line saying why), again on every config reload, and again whenever it changed when a control
endpoint is called (one `stat`): a rotated Secret takes effect without a restart. A file that
turns bad later keeps the last good token and logs why. The token itself is never logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sidecar.config.watch import file_signature

log = logging.getLogger("sidecar.admin.token")

# Where the path comes from, for messages (the config key and the variable that sets it).
TOKEN_FILE_SETTING = "admin_token_file"
TOKEN_FILE_ENV = "MODEL_SIDECAR_ADMIN_TOKEN_FILE"
# A token longer than this is certainly not what the operator meant to mount.
MAX_TOKEN_BYTES = 4096


class AdminTokenError(Exception):
    """The token file named by the config cannot be used; the message says why, in one line."""


def read_token_file(path: str) -> str:
    """The token in `path`, surrounding whitespace (e.g. the newline of `--from-file`) removed.

    Raises AdminTokenError when the file cannot be read, is empty, too large, or holds more than
    one line or anything but visible ASCII (a Bearer token is one such word)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise AdminTokenError(
            f"{TOKEN_FILE_SETTING} {path}: cannot read it: {exc.strerror or exc}"
        ) from None
    if len(data) > MAX_TOKEN_BYTES:
        raise AdminTokenError(
            f"{TOKEN_FILE_SETTING} {path}: longer than {MAX_TOKEN_BYTES} bytes: not a token"
        )
    token = data.strip()
    if not token:
        raise AdminTokenError(f"{TOKEN_FILE_SETTING} {path}: the file is empty")
    if any(byte <= 0x20 or byte >= 0x7F for byte in token):
        raise AdminTokenError(
            f"{TOKEN_FILE_SETTING} {path}: the token must be one word of visible ASCII "
            "characters (no spaces, line breaks or control characters)"
        )
    return token.decode("ascii")


class AdminToken:
    """The current admin token (None: no token configured, control endpoints are loopback-only)."""

    def __init__(self, path: str | None) -> None:
        self._path: str | None = None
        self._token: str | None = None
        self._signature: tuple[int, int, int] | None = None
        if path:
            self._take(path)

    @property
    def configured(self) -> bool:
        """Whether control endpoints require the token (else: loopback peers only)."""
        return self._token is not None

    def current(self) -> str | None:
        """The token to compare with, re-read first if its file changed since it was read."""
        if self._path is not None and file_signature(Path(self._path)) != self._signature:
            self._refresh(self._path, "the token file changed")
        return self._token

    def reload(self, path: str | None) -> None:
        """Take the token file of a reloaded config: read it again (a new path, or the same
        one rotated). A file that cannot be used keeps the current token and logs why."""
        if not path:
            if self._token is not None:
                log.warning(
                    "config reload: no %s any more: control endpoints now answer loopback "
                    "peers only",
                    TOKEN_FILE_SETTING,
                )
            self._path = self._token = self._signature = None
            return
        self._refresh(path, "config reload")

    def _refresh(self, path: str, why: str) -> None:
        signature = file_signature(Path(path))
        try:
            self._take(path)
        except AdminTokenError as exc:
            if self._token is None:
                log.error("%s: %s; control endpoints answer loopback peers only", why, exc)
            else:
                log.error("%s: %s; the previous admin token stays in use", why, exc)
            # Not again for the same bad file: it is read again once it changes.
            self._path, self._signature = path, signature
            return
        log.info("admin token read", extra={"path": path, "reason": why})

    def _take(self, path: str) -> None:
        signature = file_signature(Path(path))
        token = read_token_file(path)
        self._path, self._token, self._signature = path, token, signature

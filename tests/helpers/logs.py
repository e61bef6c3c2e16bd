"""Capturing what the sidecar logs, formatted as it ships, for the credential-leak check."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from sidecar.logs import JSONFormatter


class CapturedLogs(logging.Handler):
    """Keeps every record it handles, formatted by the sidecar's JSONFormatter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JSONFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def containing(self, text: str) -> list[str]:
        """The captured lines in which `text` appears."""
        return [line for line in self.lines if text in line]


@contextlib.contextmanager
def captured_logs(*names: str) -> Iterator[CapturedLogs]:
    """Every record of the loggers `names`, at DEBUG and up, while inside; their levels and
    handlers are as before afterwards."""
    captured = CapturedLogs()
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(captured)
        logger.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(captured)
            logger.setLevel(level)

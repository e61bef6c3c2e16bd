"""The page: page.html with page.css and page.js put inline, read once from the package, served
from memory. One self-contained document: no CDN, no fonts, no build step, no other request
than /api/summary (and the control endpoints, when a token is typed in). Its
Content-Security-Policy allows exactly those: the inline style and script by their hashes,
fetches to this origin only."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from importlib import resources

ASSETS = ("page.html", "page.css", "page.js")


def _asset(name: str) -> str:
    return resources.files(__package__ or "sidecar.ui").joinpath(name).read_text("utf-8")


def _hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


@dataclass(frozen=True)
class Page:
    """The page's bytes and the headers it is served with."""

    body: bytes
    headers: dict[str, str]

    @classmethod
    def load(cls) -> Page:
        """The page from the package's files."""
        html, css, script = (_asset(name) for name in ASSETS)
        body = html.replace("/*STYLE*/", css).replace("/*SCRIPT*/", script)
        policy = "; ".join(
            (
                "default-src 'none'",
                f"style-src {_hash(css)}",
                f"script-src {_hash(script)}",
                "connect-src 'self'",
                "img-src data:",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            )
        )
        headers = {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }
        return cls(body.encode(), headers)

"""Why a listener could not bind its address, in words for the operator (every listener of the
command line uses it: the proxy, the admin listener, the simulator, the injector)."""

from __future__ import annotations

import errno

_BIND_FAILURES = {
    errno.EADDRINUSE: "the address is already in use (is another model-sidecar running there?)",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's",
}


def bind_failure(error: OSError) -> str:
    """The reason a bind failed, e.g. "the address is already in use (…)"."""
    known = _BIND_FAILURES.get(error.errno or 0)
    if known:
        return known
    if error.strerror:
        return error.strerror
    return str(error)

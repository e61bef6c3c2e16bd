"""The admin listener: read-only endpoints open to any peer, control endpoints behind a token.

listener   the aiohttp listener: /metrics /healthz /readyz /status, control endpoints
auth       who may call a control endpoint: a bearer token, or a loopback peer when none
token      the admin token, read from a file (a mounted Secret) and re-read when it changes
"""

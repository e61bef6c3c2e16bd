"""The request path: proxy.py decides each call once (route, request facts, experiment arm,
options); exchange.py forwards it — the one exchange, shared with shadow copies — and writes
its record; live.py holds the routing state a reload swaps; routing, headers, retry, trace
context, injection and request facts each have their own module."""

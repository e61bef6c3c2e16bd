"""Model experiments from config: split and shadow traffic, stop-loss, feedback, audit sample.

assignment.py (which arm), rewrite.py (ask another model), decision.py (what is decided
about a call before it is forwarded), limits.py (how many shadow copies an arm may run),
shadow.py (background copies through the exchange, and pairs), stoploss.py (rolling windows
and limits), feedback.py (request ids and /_sidecar/feedback), audit.py (the JSON-lines
sample), metrics.py (their metrics), runtime.py (all of it for one running sidecar, and the
`experiments` stage). The config sections are in sidecar/config/experiments.py.
"""

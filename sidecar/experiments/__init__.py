"""Model experiments from config: split and shadow traffic, stop-loss, feedback, audit sample.

config.py (the config sections), assignment.py (which arm), rewrite.py (ask another model),
shadow.py (background copies and pairs), stoploss.py (rolling windows and limits),
feedback.py (request ids and /_sidecar/feedback), audit.py (the JSON-lines sample),
metrics.py (their Prometheus series), runtime.py (all of it for one running sidecar).
"""

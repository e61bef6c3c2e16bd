"""`model-sidecar probe`: the same prompts to several models through a sidecar, side by side."""

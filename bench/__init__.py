"""The side-by-side benchmark of model-sidecar (issue #6): see bench/README.md."""

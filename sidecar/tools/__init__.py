"""Commands built on the sidecar: the demo, its traffic, the report, and the docs generators."""

"""The sidecar's configuration: pydantic models (models.py and one module per section),
loading with flags > environment > file (load.py), and the reference docs generator (doc.py)."""

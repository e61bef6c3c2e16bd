"""A lean HTTP/1.1 server and upstream client for the proxy hot path."""

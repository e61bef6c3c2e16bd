"""The request path: a call read from the app, routed, forwarded, relayed back and recorded."""

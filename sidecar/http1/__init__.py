"""A lean HTTP/1.1 server and upstream client for the proxy hot path.

Server side: listener.py (ProxyServer: accept, deadlines, drain) → connection.py (one app
connection: parse requests, run the handler) → responder.py (the request a handler gets, and
writing its response). Client side: client.py (UpstreamPool: request(), close()) → slots.py
(counting, idle and waiting connections) → upstream.py (UpstreamConnection: one connection's
protocol) → response.py (UpstreamResponse: reading a body); errors.py (the client's errors).
The parts talk through public methods and attributes only.
"""

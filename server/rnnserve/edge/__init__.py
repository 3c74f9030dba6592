"""The API edge: where calls come in and statuses go out.

``app.py`` builds the ``grpc.aio`` server (and the HTTP API beside it); ``admission.py``
counts, refuses and labels every call; ``auth.py`` checks bearer tokens and TLS settings;
``services/`` are the gRPC servicers and ``http/`` the HTTP routes; ``validation.py``
checks a request's parameters against the limits before any work; ``errors.py`` holds the
errors and their one mapping to gRPC and HTTP status codes.
"""

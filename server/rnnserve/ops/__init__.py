"""Operations: how the server is configured, observed and scaled.

``config.py`` reads the TOML config and its limits; ``logs.py`` formats log lines (text or
JSON, with request ids); ``metrics.py`` serves Prometheus metrics; ``replicas.py`` runs
``serve --workers N`` under one supervisor; ``ray_serve.py`` serves the models as a Ray
Serve deployment.
"""

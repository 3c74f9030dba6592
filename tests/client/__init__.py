"""Tests of the Python client library against a scripted fake server (``fake_rnnserve``)."""

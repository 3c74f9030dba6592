"""Test kit for plugin authors: fixtures and a backend conformance suite."""

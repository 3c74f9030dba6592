"""Thin Python client for rnnserve (placeholder)."""

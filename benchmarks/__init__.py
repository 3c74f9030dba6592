"""Benchmarks: each starts a real server, drives it over gRPC, and prints ratios against a baseline
measured in the same run (so the ratios hold on a noisy machine)."""

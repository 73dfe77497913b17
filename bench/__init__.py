"""Benchmarks: scripts that print figures (README "Benchmarks"; results in bench/RESULTS.md)."""

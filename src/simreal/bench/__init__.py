"""Benchmarks: functions that measure speed and return the figures (the CLI prints them)."""

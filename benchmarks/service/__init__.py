"""Benchmarks of the ensemble service: overhead over raw Triton calls, and open-loop load."""

"""Benchmarks (not tests): each prints a table; results live in bench/results/."""

"""Benchmarks: synthetic recorded logs and the replay throughput measurement (`make bench`)."""

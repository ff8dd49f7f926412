"""Peer implementations of our endpoints in other frameworks, the benchmarks' yardsticks."""

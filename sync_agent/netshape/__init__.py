"""Shaping the links between this computer and the dev pool's nodes (latency, bandwidth, faults)."""

"""Peer benchmarks: what a user would pick instead of sdsnn-bio, run side by side.

Each peer is a script run as a subprocess that prints one JSON line (its last
line of output); :mod:`benchmarks.peers.common` holds the shared pure logic
(result parsing, ratios, the snnTorch virtual environment's path and set-up).
"""

"""Miniature replicas of upstream layouts and the loopback server that serves them."""

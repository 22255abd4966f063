"""Reusable test helpers (servers on loopback, waiting without timed assertions)."""

"""Adapters: the outside world (venues, data vendors) behind the model's ports."""

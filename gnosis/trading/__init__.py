"""trading layer."""

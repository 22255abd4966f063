"""regime layer."""

"""Gnosis: a live paper-trading system for US equities."""

__version__ = "0.1.0"

"""shoprec: notebook-first recommendations for an online shop's product catalogue."""

__version__ = "0.1.0"

"""Grounded question answering: ranked passages cited to exact spans of their sources."""

__version__ = "0.1.0"

"""nb2prod: notebook in, an honest production package out."""

__version__ = "0.3.0"

"""initsim: see what weight initialization does to a deep network, layer by layer."""

__version__ = "0.1.0"

"""symgrad's version, in a module of its own so that every stage can read it without importing
the package face (whose lazy table points back at those stages)."""

__version__ = "0.1.0"

"""artstyle: learn the look of an art movement from its paintings and apply it to photos."""

__version__ = "0.1.0"

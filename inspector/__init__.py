"""inspector: a computer-vision inspection station for the returns bench."""

__version__ = "0.1.0"

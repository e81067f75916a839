"""POS-Omni: a point of sale for liquor stores."""

__version__ = "0.1.0"

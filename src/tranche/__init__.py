"""tranche: execution, trade and doctoral batch services on one reliable core."""

__version__ = "0.1.0"
__all__ = ["__version__"]

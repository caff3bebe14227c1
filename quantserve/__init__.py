"""quantserve: optimize a trained model to INT8, serve it with Triton, and prove speed and accuracy."""

from quantserve.errors import InternalError, QuantserveError

__all__ = ["InternalError", "QuantserveError"]
__version__ = "0.1.0"

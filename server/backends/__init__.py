"""Model backends: Triton (production) and a deterministic fake (tests, ``--fake-backend``)."""

from server.backends.base import ModelBackend

__all__ = ["ModelBackend"]

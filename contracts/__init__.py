"""Formats every plane shares, defined once: the served models' contract (``contracts.models``: names, tensors,
the intent labels, the classifier's floors) and the catalog store's SQLite layout (``contracts.catalog``).

A leaf package: it imports the standard library only, never ``server/``, ``clients/`` or ``model_repository/``
(tests/unit/test_layering.py). The service, the client SDK and the build side all import it; it imports none of
them, so no folder depends on another through it.
"""

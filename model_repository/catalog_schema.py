"""Re-export of :mod:`contracts.catalog` for the build steps that import it by this name.

The golden-set and index steps (model_repository/golden/, model_repository/index/catalog.py) hash their own
source bytes into their cache keys (model_repository/build.py), so rewriting their import line would retrain
nothing new yet rebuild them; they move to ``contracts.catalog`` with their next real change. New code imports
``contracts.catalog``.
"""

from contracts.catalog import *  # noqa: F401,F403
from contracts.catalog import guest_customer, order_customer  # noqa: F401 (named for readers and linters)

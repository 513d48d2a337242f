"""Layer 7: operators — restructure streams (join, select, rename, batch, filter)."""

from orcapod.operators.join import Join

__all__ = ["Join"]

"""Layer 11: the ``orcapod`` command."""

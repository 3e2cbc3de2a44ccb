"""Redis stores: every key pattern in ``keys``, every multi-key write in one script or transaction."""

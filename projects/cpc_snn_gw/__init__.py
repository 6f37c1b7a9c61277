"""Document 000 (CPC-SNN-GW): the original, simplified, AResGW-style and fixed runs."""

"""Gravitational-wave data for document 000: simulated H1/L1 strain, and MLGWSC-1 files."""

"""fixlab."""

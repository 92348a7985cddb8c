"""Data files shipped with hearth (texts for `hearth quality`)."""

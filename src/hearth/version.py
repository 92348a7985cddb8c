"""hearth's version, in a module of its own so that any layer can read it without importing the
package root (whose lazy ``hearth.generate`` would pull the whole Python API in)."""

__version__ = "0.1.0"

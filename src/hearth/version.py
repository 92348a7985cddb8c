"""hearth's version, in a module of its own so that any layer can read it without importing the
package root (whose lazy ``hearth.generate`` would pull the whole Python API in)."""

__version__ = "0.1.0"

# The Ollama API version hearth answers on /api/version. Clients compare it with the Ollama
# release that brought what they need (`codex --oss` refuses anything below 0.13.4), so it
# names the Ollama API hearth is compatible with; hearth's own version goes beside it.
OLLAMA_COMPAT_VERSION = "0.13.5"

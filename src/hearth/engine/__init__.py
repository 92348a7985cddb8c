"""The llama.cpp engine. Nothing outside this package imports ``llama_cpp``."""

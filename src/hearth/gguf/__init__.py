"""GGUF model files: read and check headers before llama.cpp sees them."""

from hearth.gguf.filetypes import file_type_name, ggml_type_name
from hearth.gguf.info import ArrayInfo, GGUFInfo, TensorInfo, format_parameter_count
from hearth.gguf.reader import read_gguf

__all__ = [
    "ArrayInfo",
    "GGUFInfo",
    "TensorInfo",
    "file_type_name",
    "format_parameter_count",
    "ggml_type_name",
    "read_gguf",
]

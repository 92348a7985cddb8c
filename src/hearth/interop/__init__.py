"""Models in and out of hearth for other tools: export a plain GGUF (llama.cpp, LM Studio) and
import the models of an existing Ollama store."""

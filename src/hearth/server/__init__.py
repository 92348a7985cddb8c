"""The HTTP server: Ollama's API under /api, OpenAI's under /v1, metrics, safe defaults."""

"""The prompt: chat templates rendered in a sandbox (``templates``), the conversation a request
becomes (``conversation``) and whether it fits the context window (``context``). Pure Python:
jinja2 and the tokenizer the caller hands in, no llama.cpp, so it is tested without a model."""

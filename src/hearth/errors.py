"""Expected failures.

Every error a user can cause or meet in normal use is a ``HearthError``. Each one knows the
HTTP status the server answers with and prints as one line in the CLI; only unexpected bugs
produce a traceback (and only with ``--debug``).
"""

from __future__ import annotations


class HearthError(Exception):
    """Base of every expected failure."""

    status_code: int = 500
    code: str | None = None  # a machine-readable name, where an API has one for this failure

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> dict[str, object]:
        """Facts the server adds to the error body beside the message."""
        return {}

    def cli_message(self) -> str:
        # User text (a name, a path) may hold newlines; the CLI promises exactly one line.
        flat = self.message.replace("\r", "\\r").replace("\n", "\\n")
        return f"Error: {flat}"


class InvalidRequest(HearthError):
    status_code = 400


class InvalidModelName(InvalidRequest):
    """A model name that breaks the naming rules (see names.py)."""


class InvalidModelFile(HearthError):
    """A file that is not a well-formed GGUF model; raised before llama.cpp sees it."""

    status_code = 400

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path} is not a valid GGUF model: {problem}")
        self.path = str(path)
        self.problem = problem


class ModelfileError(InvalidRequest):
    """A Modelfile that cannot be parsed; the message names the line."""

    def __init__(self, line: int, problem: str, source: str = "Modelfile") -> None:
        super().__init__(f"{source} line {line}: {problem}")
        self.line = line


class TemplateError(InvalidRequest):
    """A chat template that cannot be rendered (bad syntax, or a blocked sandbox escape)."""


class ContextOverflow(InvalidRequest):
    """A prompt that does not fit the model's context window; the server adds both counts to
    the error body (``details``), as llama-server's ``exceed_context_size_error`` does."""

    code = "context_length_exceeded"  # OpenAI's code for it

    def __init__(self, message: str, prompt_tokens: int | None = None, context: int | None = None) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.context = context

    def details(self) -> dict[str, int]:
        if self.prompt_tokens is None or self.context is None:
            return {}
        return {"prompt_tokens": self.prompt_tokens, "context_length": self.context}


class RequestCancelled(HearthError):
    """The caller gave up (disconnected, cancelled) before the request got its turn."""

    status_code = 499  # nginx's "client closed request": nobody is left to read it


class ModelNotFound(HearthError):
    status_code = 404

    def __init__(self, name: object, hint: str = "") -> None:
        message = f"model '{name}' not found"
        if hint:
            message += f"; {hint}"
        super().__init__(message)
        self.name = str(name)


class DigestMismatch(HearthError):
    """Downloaded or uploaded bytes whose sha256 is not the one promised."""

    status_code = 400


class DownloadFailed(HearthError):
    status_code = 502


class PushFailed(HearthError):
    """A registry refused or broke off an upload (``hearth push``)."""

    status_code = 502


class StoreError(HearthError):
    """The model store cannot be read or written (permissions, full disk)."""

    status_code = 500


class LicenseBlocked(HearthError):
    status_code = 403

    def __init__(self, message: str, license_id: str | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.license_id = license_id
        self.reason = reason or message


class LicenseNotAccepted(LicenseBlocked):
    """A license that must be accepted before its model is pulled, and was not."""


class LicensePolicyError(HearthError):
    """HEARTH_LICENSE_POLICY names a file that is missing or malformed; nothing is allowed
    until it is fixed, so a broken policy never silently lets everything through."""

    status_code = 500


class ClosedModel(HearthError):
    """A catalog model whose weights are not published (gpt-4o): nothing to pull or load,
    only a provider's API can run it. The message says which provider names reach it."""

    status_code = 404


class ServerBusy(HearthError):
    status_code = 503

    def __init__(self, message: str = "server busy, too many requests queued", retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class NotEnoughMemory(HearthError):
    """A model whose estimate does not fit the memory left, even after unloading idle ones;
    refused before loading rather than left to the kernel's out-of-memory killer."""

    status_code = 507  # Insufficient Storage: the closest HTTP has to "not enough memory"

    def __init__(self, message: str, needed: int = 0, available: int = 0) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available

    def details(self) -> dict[str, object]:
        return {"needed_bytes": self.needed, "available_bytes": self.available}


class EngineError(HearthError):
    """llama.cpp refused or failed to load or run a model."""

    status_code = 500


class ServerStartFailed(HearthError):
    """``hearth app`` started ``hearth serve`` in the background and it did not come up."""

    status_code = 500


class RemoteDisabled(HearthError):
    """A call to a remote provider while HEARTH_OFFLINE=1 (nothing was sent)."""

    status_code = 403


class ProviderError(HearthError):
    """A remote provider failed or refused; the message never holds the API key."""

    status_code = 502


class ProviderAuthFailed(ProviderError):
    """The provider has no key to use, or refused the one it was given."""

    status_code = 401


class ProviderRateLimited(ProviderError):
    status_code = 429

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderTimeout(ProviderError):
    status_code = 504

"""Model names: ``[host/][namespace/]model[:tag]``.

This is the only place that turns user text into the parts of a store path. The character
rules are strict so that no name can climb out of the store (``..``, absolute paths, empty
parts) or collide by case: names compare case-insensitively and are stored lower-case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hearth.errors import InvalidModelName

DEFAULT_HOST = "hearth.local"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

# A host is a DNS name or IPv4 address with an optional port.
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?(?::[0-9]{1,5})?$")
_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,79}$")


def _check_part(kind: str, value: str, pattern: re.Pattern[str], text: str) -> None:
    if not value:
        raise InvalidModelName(f"invalid model name '{text}': empty {kind}")
    if ".." in value:
        raise InvalidModelName(f"invalid model name '{text}': '..' is not allowed in the {kind}")
    if not pattern.fullmatch(value):
        raise InvalidModelName(
            f"invalid model name '{text}': {kind} '{value}' may only use letters, digits, "
            "'.', '-' and '_' and must start with a letter or digit"
        )


@dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> ModelName:
        if not isinstance(text, str) or not text.strip():
            raise InvalidModelName("a model name is required")
        original = text
        text = text.strip()
        if text.startswith("/") or text.endswith("/") or "\\" in text or "//" in text:
            raise InvalidModelName(f"invalid model name '{original}': empty part or bad slash")
        if "@" in text:
            raise InvalidModelName(f"invalid model name '{original}': digests are not names")
        tag = DEFAULT_TAG
        path = text
        last_slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > last_slash:
            path, tag = text[:colon], text[colon + 1 :]
            _check_part("tag", tag, _TAG_RE, original)
        parts = path.split("/")
        if len(parts) > 3:
            raise InvalidModelName(
                f"invalid model name '{original}': use [host/][namespace/]model[:tag]"
            )
        host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
        if len(parts) == 3:
            host, namespace, model = parts
            _check_part("host", host, _HOST_RE, original)
        elif len(parts) == 2:
            namespace, model = parts
        else:
            (model,) = parts
        _check_part("namespace", namespace, _PART_RE, original)
        _check_part("model", model, _PART_RE, original)
        return cls(host.lower(), namespace.lower(), model.lower(), tag.lower())

    @classmethod
    def is_valid(cls, text: str) -> bool:
        try:
            cls.parse(text)
        except InvalidModelName:
            return False
        return True

    def path_parts(self) -> tuple[str, str, str, str]:
        """Parts of the manifest path, already validated: safe to join under the store."""
        return (self.host, self.namespace, self.model, self.tag)

    @property
    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def short(self) -> str:
        """The name as people write it: default host and namespace left out."""
        if self.host == DEFAULT_HOST:
            if self.namespace == DEFAULT_NAMESPACE:
                return f"{self.model}:{self.tag}"
            return f"{self.namespace}/{self.model}:{self.tag}"
        return self.full

    def with_tag(self, tag: str) -> ModelName:
        return ModelName.parse(f"{self.host}/{self.namespace}/{self.model}:{tag}")

    def __str__(self) -> str:
        return self.short

"""``hearth export MODEL out.gguf``: a model as one plain GGUF file for llama.cpp, LM Studio
and other GGUF tools.

The store's weights blob already is a GGUF. When the model's own chat template or license id
differ from what the GGUF says (a `hearth create` with TEMPLATE, a catalog license), they are
written into the exported file's metadata (``tokenizer.chat_template``, ``general.license``);
otherwise the blob is copied unchanged and its sha256 checked against its digest. What a GGUF
has no place for (system prompt, parameters, messages, license texts) is named in the result.
Models with LoRA adapter layers are refused: one GGUF cannot carry base and adapter together.

The file is written to a temp file next to the destination, fsynced, read back and hashed,
then moved into place; an existing file is only replaced with ``force``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from hearth.api.types import ProgressFn, ProgressResponse, no_progress
from hearth.errors import DigestMismatch, InvalidRequest, StoreError
from hearth.interop.gguf_rewrite import copy_file, file_sha256, rewrite_metadata

if TYPE_CHECKING:
    from hearth.store import ModelStore, StoredModel


@dataclass
class ExportResult:
    path: Path
    size: int
    sha256: str
    written_metadata: list[str] = field(default_factory=list)  # GGUF keys set from the model
    not_carried: list[str] = field(default_factory=list)

    @property
    def unchanged_copy(self) -> bool:
        return not self.written_metadata


def export_model(store: ModelStore, name: str, destination: str | os.PathLike[str], *,
                 force: bool = False, progress: ProgressFn = no_progress) -> ExportResult:
    from hearth.gguf import read_gguf

    model = store.get(name)
    if model.manifest.layers_of("application/vnd.ollama.image.adapter"):
        parent = model.config.get("parent_model") or "its base model"
        raise InvalidRequest(
            f"cannot export '{model.name.short}': it applies LoRA adapter layers, which one GGUF "
            f"file cannot carry; export {parent} and give the adapter to your tool separately")
    blob = model.model_path
    target = _target_path(Path(destination).expanduser(), model, blob, force)
    info = read_gguf(blob)
    changes, not_carried = metadata_changes(model, info.chat_template, info.license)
    expected = model.model_layer.digest.removeprefix("sha256:")
    total = blob.stat().st_size

    done = 0

    def on_bytes(count: int) -> None:
        nonlocal done
        done += count
        progress(ProgressResponse(status=f"exporting {model.name.short}", total=total, completed=done))

    temp = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with _create(temp) as out:
            if changes:
                source_sha, written_sha = rewrite_metadata(blob, out, changes, on_bytes)
            else:
                source_sha = written_sha = copy_file(blob, out, on_bytes)
            out.flush()
            os.fsync(out.fileno())
        if source_sha != expected:
            raise DigestMismatch(f"the stored weights of '{model.name.short}' do not match their "
                                 f"digest sha256:{expected} (the store is damaged; pull the model again)")
        progress(ProgressResponse(status="verifying the exported file"))
        if file_sha256(temp) != written_sha:
            raise StoreError(f"{target}: the file read back differs from what was written (disk error?)")
        if changes:
            read_gguf(temp)  # the rewritten header is checked like any GGUF before it is handed out
        _move_into_place(temp, target, force)
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    progress(ProgressResponse(status="success"))
    return ExportResult(target, target.stat().st_size, written_sha, sorted(changes), not_carried)


def metadata_changes(model: StoredModel, gguf_template: str | None,
                     gguf_license: str | None) -> tuple[dict[str, str], list[str]]:
    """GGUF string keys to set from the model's layers, and what cannot be carried."""
    from hearth.errors import TemplateError

    changes: dict[str, str] = {}
    not_carried: list[str] = []
    template = model.template
    if template is not None and template != gguf_template:
        from hearth.prompt.templates import validate_template

        try:
            validate_template(template)
            changes["tokenizer.chat_template"] = template
        except TemplateError:
            not_carried.append("template (not a Jinja chat template; the GGUF's own is kept)")
    license_id = model.config.get("license_id")
    if isinstance(license_id, str) and license_id and license_id.lower() != (gguf_license or "").lower():
        changes["general.license"] = license_id
    if model.system:
        not_carried.append("system prompt")
    if model.parameters:
        shown = ", ".join(f"{key}={value}" for key, value in sorted(model.parameters.items()))
        not_carried.append(f"parameters ({shown})")
    if model.messages:
        not_carried.append(f"messages ({len(model.messages)})")
    if model.manifest.layers_of("application/vnd.ollama.image.license"):
        not_carried.append("license text (general.license names the license)")
    return changes, not_carried


def _target_path(destination: Path, model: StoredModel, blob: Path, force: bool) -> Path:
    if destination.is_dir():
        destination = destination / f"{model.name.model}-{model.name.tag}.gguf"
    if not destination.parent.is_dir():
        raise InvalidRequest(f"cannot export to {destination}: folder {destination.parent} does not exist")
    if destination.exists() or destination.is_symlink():
        if destination.is_dir():
            raise InvalidRequest(f"cannot export to {destination}: it is a folder")
        with contextlib.suppress(OSError):
            if os.path.samefile(destination, blob):
                raise InvalidRequest(f"{destination} is the store's own blob; choose another path")
        if not force:
            raise InvalidRequest(f"{destination} already exists; use --force to replace it")
    return destination


def _create(path: Path) -> BinaryIO:
    return open(path, "xb")  # noqa: SIM115 - closed by the caller's with


def _move_into_place(temp: Path, target: Path, force: bool) -> None:
    if force:
        os.replace(temp, target)
        return
    # Without --force a file that appeared meanwhile must survive: link refuses to overwrite.
    try:
        os.link(temp, target)
    except FileExistsError:
        raise InvalidRequest(f"{target} already exists; use --force to replace it") from None
    except OSError:
        if target.exists():
            raise InvalidRequest(f"{target} already exists; use --force to replace it") from None
        os.replace(temp, target)

"""``Client``: the same methods as ``Runtime``, over HTTP to a running ``hearth serve``.

The CLI uses it when a server answers at HEARTH_HOST, so a model stays loaded between
``hearth run`` calls. The wire is ``transport.py``; this module is the methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.client.transport import ServerTransport
from hearth.errors import LicenseNotAccepted, ModelNotFound

if TYPE_CHECKING:
    from hearth.modelfile import Sources


class Client(ServerTransport):
    def list_raw(self) -> list[dict[str, Any]]:
        """``/api/tags`` as plain dicts: ``hearth list`` prints them without the wire types."""
        return self._json("GET", "/api/tags").get("models", [])

    # -- the Runtime's methods ------------------------------------------------------------

    def list_models(self):
        from hearth.api.types import ListResponse

        return ListResponse.model_validate(self._json("GET", "/api/tags"))

    def show(self, name: str):
        from hearth.api.types import ShowResponse

        return ShowResponse.model_validate(self._json("POST", "/api/show", {"model": name}))

    def get_model(self, name: str):
        return self.show(name)

    def ensure_model(self, name: str, progress=None, *, accept_license: bool = False, ask=None):
        try:
            return self.show(name)
        except ModelNotFound:
            self.pull(name, progress, accept_license=accept_license, ask=ask)
            return self.show(name)

    def pull(self, name: str, progress=None, *, accept_license: bool = False, ask=None,
             max_speed: float | None = None, cancelled=None, insecure: bool = False) -> None:
        """The server asks nobody: a license that needs accepting comes back as 403, then
        ``ask`` (the terminal) decides and the pull is sent again with ``accept_license``.
        Ctrl+C closes the stream, and the server stops the download (kept for a resume)."""
        from hearth.api.types import ProgressResponse

        body: dict[str, Any] = {"model": name, "stream": True}
        if accept_license:
            body["accept_license"] = True
        if max_speed:
            body["max_speed"] = max_speed
        if insecure:
            body["insecure"] = True
        try:
            for item in self._stream("/api/pull", body):
                if progress:
                    progress(ProgressResponse.model_validate(item))
        except LicenseNotAccepted as exc:
            from hearth.licenses import acceptance_prompt

            if accept_license or ask is None or not ask(acceptance_prompt(name, exc.license_id)):
                raise
            self.pull(name, progress, accept_license=True, max_speed=max_speed, insecure=insecure)

    def create(self, name: str, *, modelfile: str | None = None, from_path: str | Path | None = None,
               base_dir: Path | None = None, progress=None, source: str = "Modelfile",
               quantize: str | None = None, allow_requantize: bool = False,
               sources: Sources | None = None) -> None:
        """Parse the Modelfile here, upload local files (FROM, ADAPTER) as blobs, then send the
        parts: the server reads no path (it creates store-only), this process does, as
        ``Runtime.create`` does with its default ``sources`` (``LOCAL_FILES``, also None here).
        An ``@sha256:...`` reference names a blob already on the server and is sent as it is."""
        from hearth.api.types import ProgressResponse
        from hearth.errors import InvalidRequest
        from hearth.modelfile import (
            PATHS_REFUSED,
            Sources,
            blob_reference,
            check_sources,
            parse_modelfile,
            resolve_from,
        )

        sources = sources or Sources.LOCAL_FILES
        if modelfile is None:
            if from_path is None:
                raise InvalidRequest("give a Modelfile or a GGUF file to create a model from")
            if sources is not Sources.LOCAL_FILES:
                raise InvalidRequest(PATHS_REFUSED)
            modelfile = f'FROM "{Path(from_path).expanduser().resolve()}"\n'
        parsed = parse_modelfile(modelfile, source=source)
        check_sources(parsed, sources)
        body: dict[str, Any] = {"model": name, "stream": True}
        if quantize:
            body["quantize"] = quantize
            body["allow_requantize"] = allow_requantize
        if parsed.adapters:
            if any(scale != 1.0 for _path, scale in parsed.adapters):
                raise InvalidRequest(f"{source}: adapter scales other than 1 cannot be sent to a server "
                                     "(Ollama's API has no field for them); stop the server to create "
                                     "this model in-process")
            body["adapters"] = {}
            for adapter, _scale in parsed.adapters:
                reference = blob_reference(adapter)
                if reference is not None:
                    key, digest = reference.replace(":", "-"), reference
                else:
                    adapter_path = Path(adapter).expanduser()
                    if not adapter_path.is_absolute():
                        adapter_path = (base_dir or Path.cwd()) / adapter_path
                    if not adapter_path.is_file():
                        raise InvalidRequest(f"ADAPTER file {adapter_path} does not exist")
                    key, digest = adapter_path.name, self.upload_blob(adapter_path)
                # The field is a map by file name: two adapters of one name must both arrive.
                while key in body["adapters"]:
                    key = "_" + key
                body["adapters"][key] = digest
        kind, path = resolve_from(parsed, base_dir or Path.cwd())
        if kind == "file":
            assert path is not None
            if not path.is_file():
                raise InvalidRequest(f"{source} line {parsed.from_line}: FROM file {path} does not exist")
            from hearth.gguf import read_gguf

            read_gguf(path)  # refuse a bad file before uploading it
            body["files"] = {path.name if path.name.endswith(".gguf") else "model.gguf": self.upload_blob(path)}
        else:
            body["from"] = parsed.from_
        body.update(parsed.request_fields())
        for item in self._stream("/api/create", body):
            if progress:
                progress(ProgressResponse.model_validate(item))

    def upload_blob(self, path: Path) -> str:
        from hearth.store.blobs import file_sha256

        digest = "sha256:" + file_sha256(path)
        status, _ = self._request("HEAD", f"/api/blobs/{digest}")
        if status == 200:
            return digest
        connection = self._connection()
        try:
            with open(path, "rb") as handle:
                headers = self._headers({"Content-Type": "application/octet-stream",
                                         "Content-Length": str(path.stat().st_size)})
                connection.request("POST", f"/api/blobs/{digest}", body=handle, headers=headers)
                response = connection.getresponse()
                data = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            raise self._error(response.status, data)
        return digest

    def push(self, name: str, progress=None, *, destination: str | None = None,
             insecure: bool = False) -> None:
        from hearth.api.types import ProgressResponse

        body = {"model": name, "insecure": insecure, "stream": True, "destination": destination}
        for item in self._stream("/api/push", body):
            if progress:
                progress(ProgressResponse.model_validate(item))

    def copy(self, source: str, destination: str) -> None:
        self._json("POST", "/api/copy", {"source": source, "destination": destination})

    def delete(self, name: str) -> None:
        self._json("DELETE", "/api/delete", {"model": name})

    def ps(self):
        from hearth.api.types import ProcessResponse

        return ProcessResponse.model_validate(self._json("GET", "/api/ps"))

    def stop(self, name: str) -> None:
        self._json("POST", "/api/stop", {"model": name})

    def chat(self, request, cancelled=None):
        from hearth.api.types import ChatResponse

        body = request.model_dump(exclude_none=True)
        body["stream"] = True
        for item in self._stream("/api/chat", body):
            yield ChatResponse.model_validate(item)

    def generate(self, request, cancelled=None):
        from hearth.api.types import GenerateResponse

        body = request.model_dump(exclude_none=True)
        body["stream"] = True
        for item in self._stream("/api/generate", body):
            yield GenerateResponse.model_validate(item)

    def close(self) -> None:
        return None

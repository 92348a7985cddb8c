"""A small OpenAI-compatible server on loopback whose misbehaviour a test scripts: a bad key
(401, echoing the key it got), 429 then 200, 5xx, a stream that dies halfway, a provider that
never answers, and a slow one that records how many calls it had at once.

    with FakeProvider() as fake:
        fake.script("429", "ok")          # the next POSTs, in order; then "ok" again
        ...
        fake.requests                     # what arrived: path, headers, JSON body
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = ["Hello", " from", " the", " fake", " provider."]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeProvider:
    def __init__(self, models: tuple[str, ...] = ("fake-model", "llama-3.3-70b-versatile", "gpt-4o"),
                 retry_after: str = "1", delay: float = 0.3) -> None:
        self.models = models
        self.retry_after = retry_after
        self.delay = delay
        self.requests: list[Recorded] = []
        self._plan: deque[str] = deque()
        self._lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                fake._record(self, None)
                if self.path.endswith("/models"):
                    data = [{"id": m, "object": "model", "owned_by": "fake", "context_window": 8192}
                            for m in fake.models]
                    self._json(200, {"object": "list", "data": data})
                else:
                    self._json(404, {"error": {"message": "no such route"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                fake._record(self, body)
                with fake._lock:
                    behaviour = fake._plan.popleft() if fake._plan else "ok"
                fake._enter()
                try:
                    fake._answer(self, behaviour, body)
                finally:
                    fake._leave()

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- control --------------------------------------------------------------------------

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, *behaviours: str) -> None:
        with self._lock:
            self._plan.extend(behaviours)

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        with self._lock:
            self.requests.append(Recorded(handler.command, handler.path, dict(handler.headers), body))

    def _enter(self) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1

    # -- answers --------------------------------------------------------------------------

    def _answer(self, handler: Any, behaviour: str, body: Any) -> None:
        if behaviour == "401":
            # A careless provider that repeats the key it was sent: hearth must not.
            sent = handler.headers.get("Authorization", "")
            handler._json(401, {"error": {"message": f"Invalid API Key: {sent}", "type": "invalid_request_error"}})
        elif behaviour == "429":
            handler._json(429, {"error": {"message": "Rate limit reached for requests"}},
                          {"Retry-After": self.retry_after})
        elif behaviour in ("500", "502", "503"):
            handler._json(int(behaviour), {"error": {"message": "upstream is having a bad day"}})
        elif behaviour == "404":
            handler._json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist"}})
        elif behaviour == "hang":
            time.sleep(10)
        elif behaviour == "die":
            self._stream(handler, body, die_after=2)
        elif behaviour == "slow":
            time.sleep(self.delay)
            self._reply(handler, body)
        elif behaviour == "tool":
            self._tool_stream(handler, body)
        else:
            self._reply(handler, body)

    def _reply(self, handler: Any, body: Any) -> None:
        if handler.path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [float(len(text)), 0.5, -1.0]}
                    for i, text in reversed(list(enumerate(inputs)))]
            handler._json(200, {"object": "list", "data": data, "model": body["model"],
                                "usage": {"prompt_tokens": 7, "total_tokens": 7}})
        elif body.get("stream"):
            self._stream(handler, body)
        else:
            message = {"role": "assistant", "content": "".join(WORDS)}
            handler._json(200, {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1,
                                "model": body.get("model"),
                                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})

    @staticmethod
    def _start_stream(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()

    @staticmethod
    def _event(handler: Any, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        handler.wfile.write(f"data: {text}\n\n".encode())
        handler.wfile.flush()

    def _chunk(self, body: Any, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                "model": body.get("model"), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def _stream(self, handler: Any, body: Any, die_after: int | None = None) -> None:
        self._start_stream(handler)
        handler.wfile.write(b": keep-alive comment\n\n")
        self._event(handler, self._chunk(body, {"role": "assistant", "content": ""}))
        for i, word in enumerate(WORDS):
            if die_after is not None and i == die_after:
                handler.wfile.flush()
                handler.close_connection = True
                return  # the connection closes with the answer half sent
            self._event(handler, self._chunk(body, {"content": word}))
        self._event(handler, self._chunk(body, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event(handler, {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [],
                                  "usage": {"prompt_tokens": 5, "completion_tokens": len(WORDS),
                                            "total_tokens": 5 + len(WORDS)}})
        self._event(handler, "[DONE]")

    def _tool_stream(self, handler: Any, body: Any) -> None:
        self._start_stream(handler)
        name = body["tools"][0]["function"]["name"]
        first = {"index": 0, "id": "call_abc", "type": "function", "function": {"name": name, "arguments": '{"ci'}}
        self._event(handler, self._chunk(body, {"role": "assistant", "tool_calls": [first]}))
        self._event(handler, self._chunk(body, {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}))
        self._event(handler, self._chunk(body, {}, "tool_calls"))
        self._event(handler, "[DONE]")

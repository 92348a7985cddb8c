"""GET /metrics in Prometheus text format: requests, tokens, speed, queue and loaded models."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.prompt_tokens = 0
        self.generated_tokens = 0
        self.eval_seconds = 0.0
        self.last_tokens_per_second = 0.0

    def record_request(self, method: str, route: str, status: int) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1

    def record_prompt_tokens(self, count: int) -> None:
        with self._lock:
            self.prompt_tokens += count

    def record_generation(self, final: Any) -> None:
        with self._lock:
            self.prompt_tokens += final.prompt_eval_count or 0
            self.generated_tokens += final.eval_count or 0
            if final.eval_duration:
                self.eval_seconds += final.eval_duration / 1e9
                self.last_tokens_per_second = (final.eval_count or 0) / (final.eval_duration / 1e9)

    def render(self, queue_depth: int, loaded: list[tuple[str, int]], streams: int) -> str:
        with self._lock:
            lines = [
                "# HELP hearth_requests_total HTTP requests by route and status.",
                "# TYPE hearth_requests_total counter",
            ]
            for (method, route, status), count in sorted(self.requests.items()):
                lines.append(
                    f'hearth_requests_total{{method="{method}",route="{_escape(route)}",status="{status}"}} {count}'
                )
            average = self.generated_tokens / self.eval_seconds if self.eval_seconds else 0.0
            lines += [
                "# HELP hearth_prompt_tokens_total Prompt tokens evaluated.",
                "# TYPE hearth_prompt_tokens_total counter",
                f"hearth_prompt_tokens_total {self.prompt_tokens}",
                "# HELP hearth_generated_tokens_total Tokens generated.",
                "# TYPE hearth_generated_tokens_total counter",
                f"hearth_generated_tokens_total {self.generated_tokens}",
                "# HELP hearth_tokens_per_second Generation speed of the last request.",
                "# TYPE hearth_tokens_per_second gauge",
                f"hearth_tokens_per_second {self.last_tokens_per_second:.3f}",
                "# HELP hearth_tokens_per_second_average Generated tokens over time spent generating.",
                "# TYPE hearth_tokens_per_second_average gauge",
                f"hearth_tokens_per_second_average {average:.3f}",
            ]
        lines += [
            "# HELP hearth_queue_depth Requests waiting for a model.",
            "# TYPE hearth_queue_depth gauge",
            f"hearth_queue_depth {queue_depth}",
            "# HELP hearth_active_streams Responses being streamed now.",
            "# TYPE hearth_active_streams gauge",
            f"hearth_active_streams {streams}",
            "# HELP hearth_loaded_models Models loaded in memory.",
            "# TYPE hearth_loaded_models gauge",
            f"hearth_loaded_models {len(loaded)}",
            "# HELP hearth_loaded_model_bytes Estimated memory of each loaded model.",
            "# TYPE hearth_loaded_model_bytes gauge",
        ]
        lines += [f'hearth_loaded_model_bytes{{model="{_escape(name)}"}} {size}' for name, size in loaded]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

"""Flash attention and the KV-cache type: the settings, the options, their one rule (a quantized
cache needs flash attention), that both reach llama.cpp, and that the memory estimate follows."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest

from hearth.api.types import Options
from hearth.engine.batch import FLASH_ATTENTION_TYPES, KV_CACHE_GGML_TYPES, BatchDecoder
from hearth.engine.local_engine import LocalBatchEngine
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.errors import EngineError, InvalidRequest
from hearth.fit import estimate_memory
from hearth.fit.shape import ModelShape
from tests.tinymodel import write_tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 32-wide heads: quantized caches store K and V in blocks of 32.
    return write_tiny_model(tmp_path_factory.mktemp("kv") / "kv.gguf", n_embd=128, head_dim=32)


def settings_for(monkeypatch: pytest.MonkeyPatch, options: Options, **env: str) -> LoadSettings:
    for key in ("HEARTH_FLASH_ATTENTION", "HEARTH_KV_CACHE_TYPE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return LoadSettings.from_options(options, 4096)


def test_settings_and_options_choose_and_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_for(monkeypatch, Options()).flash_attention == "off"
    assert settings_for(monkeypatch, Options()).kv_cache_type == "f16"
    chosen = settings_for(monkeypatch, Options(), HEARTH_FLASH_ATTENTION="auto")
    assert chosen.flash_attention == "auto"
    assert settings_for(monkeypatch, Options(flash_attention=True), HEARTH_FLASH_ATTENTION="off").flash_attention == "on"
    with pytest.raises(InvalidRequest, match="HEARTH_KV_CACHE_TYPE must be one of"):
        settings_for(monkeypatch, Options(), HEARTH_KV_CACHE_TYPE="q5_1")
    with pytest.raises(ValueError, match="kv_cache_type must be"):
        Options(kv_cache_type="int3")


def test_a_quantized_cache_needs_flash_attention(monkeypatch: pytest.MonkeyPatch) -> None:
    # "auto" becomes "on": llama.cpp cannot keep a quantized V without it.
    assert settings_for(monkeypatch, Options(kv_cache_type="q8_0"), HEARTH_FLASH_ATTENTION="auto").flash_attention == "on"
    with pytest.raises(InvalidRequest, match="q4_0 KV cache needs flash attention"):
        settings_for(monkeypatch, Options(kv_cache_type="q4_0", flash_attention="off"))


def test_the_names_map_to_llama_cpps_values() -> None:
    assert FLASH_ATTENTION_TYPES == {"auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
                                     "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
                                     "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED}
    assert KV_CACHE_GGML_TYPES == {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0,
                                   "q4_0": llama_cpp.GGML_TYPE_Q4_0}


def test_both_reach_llama_cpp(model: Path) -> None:
    sizes = {}
    for kv_type in ("f16", "q8_0", "q4_0"):
        engine = LocalBatchEngine(model, LoadSettings(num_ctx=256, num_thread=2, kv_cache_type=kv_type,
                                                      flash_attention="on"))
        try:
            chunks = list(engine.generate(engine.vocab.tokenize("the sky is blue"),
                                          SamplingSettings(temperature=0, num_predict=8)))
            assert chunks[-1].done
            # The sequence's saved state is its KV cells: smaller in a smaller type.
            sizes[kv_type] = llama_cpp.llama_state_seq_get_size(engine.decoder.ctx.ctx, 0)
        finally:
            engine.close()
    assert sizes["f16"] > sizes["q8_0"] > sizes["q4_0"]
    # Flash attention off reaches llama.cpp too: it refuses a quantized cache without it.
    with pytest.raises(EngineError, match="could not load"):
        BatchDecoder(model, LoadSettings(num_ctx=256, kv_cache_type="q8_0", flash_attention="off"), 1)


def test_the_estimate_follows_the_kv_type() -> None:
    shape = ModelShape(n_layer=30, n_embd=576, n_head=9, n_head_kv=3, head_dim_k=64, head_dim_v=64,
                       n_vocab=49152, n_ff=1536, source="test")
    f16, q8, q4 = (estimate_memory(100 << 20, shape, 4096, n_parallel=4, kv_cache_type=kv).kv_cache_bytes
                   for kv in ("f16", "q8_0", "q4_0"))
    assert f16 == 30 * 3 * 128 * 2 * 4096 * 4
    assert q8 == int(f16 * 17 / 32) and q4 == int(f16 * 9 / 32)


def test_a_quantized_cache_alone_switches_the_default_off_to_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_for(monkeypatch, Options(), HEARTH_KV_CACHE_TYPE="q4_0").flash_attention == "on"

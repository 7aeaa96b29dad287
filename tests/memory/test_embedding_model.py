"""The default embedding model as `make install` prepares it: all-MiniLM-L6-v2 converted to GGUF
without PyTorch (scripts/embedding_model/gguf_convert.py), served by the real llama-server with
the arguments of config/models.yaml, checked against a numpy forward pass of the original
safetensors (scripts/embedding_model/reference.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from deploy.stack import ensure_embedding_model, ensure_llama_server
from scripts.embedding_model.gguf_convert import tensor_name
from scripts.embedding_model.reference import ReferenceEncoder, cosine
from services.common.config import repo_root
from services.common.testing import free_port
from services.runtime.models_config import load_models_config

pytestmark = pytest.mark.model

SENTENCES = [
    "The user's cat is called Pixel.",
    "What is my cat's name?",
    "Quarterly tax filings are due in April, says Zoë.",
    "Hello, WORLD!! naïve café: 42 ducks swim at 6:45 am.",
    "The spare house key is under the blue flowerpot, next to the shed door that sticks in winter.",
]


@pytest.fixture(scope="module")
def gguf() -> Path:
    return ensure_embedding_model()


@pytest.fixture(scope="module")
def reference(gguf: Path) -> ReferenceEncoder:
    # fetch_embedding_model.sh keeps the source folder beside the GGUF.
    return ReferenceEncoder(gguf.parent / "all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def embedding_server(gguf: Path) -> Iterator[str]:
    """llama-server on the GGUF with the `embedding` server's arguments from config/models.yaml."""
    port = free_port()
    env = {**os.environ, "DUCKLM_EMBEDDING_MODEL_PATH": str(gguf), "DUCKLM_LLAMA_EMBEDDING_PORT": str(port)}
    config = load_models_config(repo_root() / "config" / "models.yaml", env)
    server = config.servers["embedding"]
    assert server.model_path == str(gguf) and server.port == port
    process = subprocess.Popen(
        [str(ensure_llama_server()), "-m", server.model_path, "--host", "127.0.0.1", "--port", str(port), *server.args],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
async def http(embedding_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=embedding_server, timeout=30) as client:
        for _ in range(600):
            try:
                if (await client.get("/health")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)  # polling a starting process: there is no clock to inject
        yield client


async def embed(http: httpx.AsyncClient, texts: list[str]) -> list[np.ndarray]:
    reply = await http.post("/v1/embeddings", json={"input": texts, "model": "all-MiniLM-L6-v2"})
    assert reply.status_code == 200, reply.text
    return [np.array(item["embedding"]) for item in sorted(reply.json()["data"], key=lambda d: d["index"])]


async def test_llama_server_embeddings_match_the_numpy_reference(
    http: httpx.AsyncClient, reference: ReferenceEncoder
) -> None:
    served = await embed(http, SENTENCES)
    for text, vector in zip(SENTENCES, served, strict=True):
        assert vector.shape == (384,)
        similarity = cosine(vector, reference.embed(text))
        print(f"cosine {similarity:.5f}  {text!r}")
        assert similarity >= 0.99, text


async def test_llama_server_tokenises_as_the_original_tokenizer(
    http: httpx.AsyncClient, reference: ReferenceEncoder
) -> None:
    for text in SENTENCES:
        reply = await http.post("/tokenize", json={"content": text, "add_special": True})
        assert reply.json()["tokens"] == reference.token_ids(text), text


async def test_related_texts_score_above_unrelated_ones(http: httpx.AsyncClient) -> None:
    fact, question, unrelated = await embed(http, [SENTENCES[0], SENTENCES[1], SENTENCES[2]])
    assert cosine(fact, question) > 0.5 > cosine(fact, unrelated)


async def test_a_text_longer_than_the_model_takes_is_refused_not_truncated(http: httpx.AsyncClient) -> None:
    reply = await http.post("/v1/embeddings", json={"input": ["a." * 400]})
    assert reply.status_code >= 400 and "too large" in reply.text


def test_the_converter_maps_every_bert_tensor_and_refuses_unknown_ones() -> None:
    assert tensor_name("embeddings.word_embeddings.weight") == "token_embd.weight"
    assert tensor_name("bert.encoder.layer.5.attention.output.LayerNorm.gamma") == "blk.5.attn_output_norm.weight"
    assert tensor_name("encoder.layer.0.intermediate.dense.bias") == "blk.0.ffn_up.bias"
    assert tensor_name("pooler.dense.weight") is None
    with pytest.raises(ValueError, match="not part of a BERT encoder"):
        tensor_name("decoder.layers.0.self_attn.q_proj.weight")

"""A reference sentence embedding for a BERT sentence-transformers model, in numpy, straight from
its safetensors and tokenizer.json: the yardstick the GGUF served by llama-server is checked
against.

    python -m scripts.embedding_model.reference MODEL_DIR "a sentence" ["another" ...]

It is a plain forward pass (embeddings, post-norm encoder layers with exact GELU, mean pooling,
L2 normalisation), written for clarity, not speed. It is for checking, never for serving.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Tokenizer

__all__ = ["ReferenceEncoder", "cosine"]

Array = NDArray[np.float64]


def _erf(x: Array) -> Array:
    # Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7): numpy has no erf of its own.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    result: Array = sign * (1.0 - poly * np.exp(-a * a))
    return result


def _gelu(x: Array) -> Array:
    result: Array = 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))
    return result


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    result: Array = (x - mean) / np.sqrt(variance + eps) * weight + bias
    return result


def cosine(a: Array, b: Array) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


class ReferenceEncoder:
    """Loads a sentence-transformers BERT folder; `embed(text)` gives its unit-length vector."""

    def __init__(self, model_dir: Path, *, max_tokens: int = 256) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.max_tokens = max_tokens
        raw = load_file(str(model_dir / "model.safetensors"))
        self.w: dict[str, Array] = {k.removeprefix("bert."): v.astype(np.float64) for k, v in raw.items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    def token_ids(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text).ids
        if len(ids) > self.max_tokens:
            # Keep [CLS] ... [SEP] as sentence-transformers' truncation does.
            ids = [*ids[: self.max_tokens - 1], ids[-1]]
        return ids

    def _linear(self, x: Array, name: str) -> Array:
        result: Array = x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]
        return result

    def _norm(self, x: Array, name: str) -> Array:
        return _layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def embed(self, text: str) -> Array:
        ids = self.token_ids(text)
        positions = np.arange(len(ids))
        x = (self.w["embeddings.word_embeddings.weight"][ids]
             + self.w["embeddings.position_embeddings.weight"][positions]
             + self.w["embeddings.token_type_embeddings.weight"][0])
        x = self._norm(x, "embeddings.LayerNorm")
        for layer in range(self.layers):
            x = self._encoder_layer(x, f"encoder.layer.{layer}")
        pooled = x.mean(axis=0)
        result: Array = pooled / np.linalg.norm(pooled)
        return result

    def _encoder_layer(self, x: Array, prefix: str) -> Array:
        tokens, width = x.shape
        head_dim = width // self.heads

        def split(name: str) -> Array:
            return self._linear(x, f"{prefix}.attention.self.{name}").reshape(tokens, self.heads, head_dim).transpose(1, 0, 2)

        q, k, v = split("query"), split("key"), split("value")
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(head_dim)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(tokens, width)
        x = self._norm(x + self._linear(context, f"{prefix}.attention.output.dense"), f"{prefix}.attention.output.LayerNorm")
        hidden = _gelu(self._linear(x, f"{prefix}.intermediate.dense"))
        return self._norm(x + self._linear(hidden, f"{prefix}.output.dense"), f"{prefix}.output.LayerNorm")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    encoder = ReferenceEncoder(Path(argv[0]))
    for text in argv[1:]:
        vector = encoder.embed(text)
        print(f"{text!r}: {len(vector)} dims, first values {np.round(vector[:4], 4).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

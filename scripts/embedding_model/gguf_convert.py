"""Writes a sentence-transformers BERT model (all-MiniLM-L6-v2) as a GGUF file llama-server can
serve with `--embeddings`, from its safetensors, config.json and tokenizer.json alone.

    python -m scripts.embedding_model.gguf_convert MODEL_DIR OUT.gguf

It follows what llama.cpp's own converter does for a BertModel (conversion/bert.py there) but
reads the weights with `safetensors.numpy` and writes them with the `gguf` package, so it needs
numpy and no PyTorch or transformers. It handles plain BERT encoders with a WordPiece tokenizer
and mean or CLS pooling, and refuses anything else rather than writing a file that loads but
embeds wrongly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from safetensors.numpy import load_file

__all__ = ["convert", "tensor_name"]

# Hugging Face tensor name (without the "bert." prefix) -> GGUF name, as in llama.cpp's
# gguf-py/gguf/tensor_mapping.py for MODEL_ARCH.BERT.
_GLOBAL_TENSORS = {
    "embeddings.word_embeddings.weight": "token_embd.weight",
    "embeddings.token_type_embeddings.weight": "token_types.weight",
    "embeddings.position_embeddings.weight": "position_embd.weight",
    "embeddings.LayerNorm.weight": "token_embd_norm.weight",
    "embeddings.LayerNorm.bias": "token_embd_norm.bias",
}
_LAYER_TENSORS = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
# Tensors the embedding graph does not use (llama.cpp's converter drops them too).
_DROPPED = ("embeddings.position_ids", "pooler.", "cls.")
# llama.cpp keeps these in float32 whatever the file type (its quantiser does the same).
_ALWAYS_F32 = ("position_embd.weight", "token_types.weight")


def tensor_name(hf_name: str) -> str | None:
    """The GGUF name of a Hugging Face BERT tensor, or None for one the embedding graph drops."""
    name = hf_name.removeprefix("bert.")
    name = name.replace(".gamma", ".weight").replace(".beta", ".bias")
    if name.startswith(_DROPPED):
        return None
    if name in _GLOBAL_TENSORS:
        return _GLOBAL_TENSORS[name]
    parts = name.split(".")
    if len(parts) >= 5 and parts[0] == "encoder" and parts[1] == "layer" and parts[2].isdecimal():
        stem, suffix = ".".join(parts[3:-1]), parts[-1]
        if stem in _LAYER_TENSORS and suffix in ("weight", "bias"):
            return f"blk.{parts[2]}.{_LAYER_TENSORS[stem]}.{suffix}"
    raise ValueError(f"tensor {hf_name!r} is not part of a BERT encoder this converter knows")


def _pooling(model_dir: Path) -> gguf.PoolingType:
    modules_file = model_dir / "modules.json"
    modules = json.loads(modules_file.read_text()) if modules_file.is_file() else []
    path = next((m["path"] for m in modules if str(m["type"]).endswith("Pooling")), None)
    if path is None:
        raise ValueError(f"{model_dir} has no sentence-transformers Pooling module (modules.json)")
    pooling = json.loads((model_dir / path / "config.json").read_text())
    if pooling.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    raise ValueError(f"pooling {pooling} is not supported: only mean or CLS pooling")


def _vocabulary(tokenizer: dict[str, Any]) -> tuple[list[str], list[int], dict[str, int]]:
    """Tokens in llama.cpp's "phantom space" form (a word start gets U+2581, a "##" piece
    loses its marker, special tokens stay as they are), their types, and the special ids."""
    model = tokenizer["model"]
    if model.get("type") != "WordPiece" or model.get("continuing_subword_prefix", "##") != "##":
        raise ValueError("only a WordPiece tokenizer with the '##' subword prefix is supported")
    vocab: dict[str, int] = model["vocab"]
    by_id = {index: token for token, index in vocab.items()}
    special = {t["content"]: int(t["id"]) for t in tokenizer.get("added_tokens", []) if t.get("special")}
    tokens: list[str] = []
    types: list[int] = []
    for index in range(max(by_id) + 1):
        token = by_id.get(index)
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif token in special:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(token[2:] if token.startswith("##") else "\u2581" + token)
            types.append(gguf.TokenType.NORMAL)
    return tokens, types, special


def _check_normalizer(tokenizer: dict[str, Any]) -> None:
    # llama.cpp's WPM tokenizer lowercases and strips accents, as BertNormalizer(lowercase=True)
    # does; a cased model would be tokenised differently there, so it is refused here.
    normalizer = tokenizer.get("normalizer") or {}
    if normalizer.get("type") != "BertNormalizer" or not normalizer.get("lowercase", False):
        raise ValueError("only an uncased BERT tokenizer (BertNormalizer, lowercase) is supported")


def convert(model_dir: Path, out: Path, *, name: str = "") -> None:
    """Writes `out` (through a temporary file beside it, renamed when complete)."""
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{model_dir} is not a BERT model with absolute positions")
    if config.get("hidden_act") != "gelu":
        raise ValueError(f"activation {config.get('hidden_act')!r} is not supported (only gelu)")
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    _check_normalizer(tokenizer)
    tokens, types, special = _vocabulary(tokenizer)
    weights = load_file(str(model_dir / "model.safetensors"))

    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(partial, "bert")
    writer.add_name(name or model_dir.name)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(_pooling(model_dir))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    writer.add_bos_token_id(special["[CLS]"])
    writer.add_sep_token_id(special["[SEP]"])
    writer.add_unk_token_id(special["[UNK]"])
    writer.add_pad_token_id(special["[PAD]"])
    writer.add_mask_token_id(special["[MASK]"])
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)

    for hf_name in sorted(weights):
        gguf_name = tensor_name(hf_name)
        if gguf_name is None:
            continue
        data = weights[hf_name].astype(np.float32)
        # 2-D weight matrices in float16 halve the file and the memory traffic; norms, biases
        # and the position/type embeddings stay float32, as llama.cpp's converter keeps them.
        if data.ndim >= 2 and gguf_name not in _ALWAYS_F32:
            data = data.astype(np.float16)
        writer.add_tensor(gguf_name, data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="folder with config.json, tokenizer.json, model.safetensors")
    parser.add_argument("out", type=Path, help="the GGUF file to write")
    parser.add_argument("--name", default="", help="the model name recorded in the file")
    args = parser.parse_args(argv)
    try:
        convert(args.model_dir, args.out, name=args.name)
    except (ValueError, KeyError, OSError) as exc:
        print(f"gguf_convert: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

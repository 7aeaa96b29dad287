"""`make eval`: scores the whole agent on everyday requests, with a real model on the real stack.

    python scripts/eval/run_eval.py                        # the default model from config/models.yaml
    python scripts/eval/run_eval.py --model path/to.gguf   # any GGUF (a llama-server is started on it)
    python scripts/eval/run_eval.py --model http://host:8000/v1   # any OpenAI-compatible server
    python scripts/eval/run_eval.py --model gemma3-270m    # a shipped model by name (fetched once)
    python scripts/eval/run_eval.py --decision single      # the one-shot directive loop, to compare

It starts llama-server(s), every service and the gateway on free ports, runs each task of
`suite.py` on a fresh copy of the workspace, approves what a task asks for, and prints a table per
category and a closing summary line with each figure next to its target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.named_models import NAMED_MODELS, apply_named_model, fetch_named_model, named_model_for_path
from deploy.stack import LocalStack, StackPorts
from scripts.eval.harness import run_tasks
from scripts.eval.heldout import HELDOUT_TASKS
from scripts.eval.scoring import format_report, summary
from scripts.eval.suite import SMOKE_TASKS, TASKS, EvalTask
from services.common.config import repo_root

__all__ = ["ModelChoiceError", "main", "models_file_for", "select_tasks"]

GGUF_MAGIC = b"GGUF"


class ModelChoiceError(Exception):
    """--model names neither a readable GGUF file nor an answering OpenAI-compatible endpoint."""


def _check_endpoint(url: str) -> str:
    """The first model id the endpoint lists; a clear error if it does not answer like an
    OpenAI-compatible server."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/models", timeout=10.0)
    except httpx.HTTPError as exc:
        raise ModelChoiceError(f"--model {url}: the endpoint does not answer ({exc!r})") from exc
    if response.status_code != 200:
        raise ModelChoiceError(f"--model {url}: GET /models answered HTTP {response.status_code}, expected 200")
    try:
        models = [str(item["id"]) for item in response.json()["data"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelChoiceError(f"--model {url}: GET /models is not an OpenAI model list ({exc!r})") from exc
    if not models:
        raise ModelChoiceError(f"--model {url}: the server lists no model")
    return models[0]


def _check_gguf(path: Path) -> None:
    try:
        with path.open("rb") as file:
            magic = file.read(4)
    except OSError as exc:
        raise ModelChoiceError(f"--model {path}: cannot read the file ({exc.strerror})") from exc
    if magic != GGUF_MAGIC:
        raise ModelChoiceError(f"--model {path}: not a GGUF file (it does not start with 'GGUF')")


def models_file_for(model: str, data_dir: Path, base: Path) -> Path | None:
    """A models.yaml whose chat role uses `model` (a shipped model's name, a GGUF path or an
    endpoint URL); None keeps the default. Checked before any task starts. A shipped model,
    by name or by its GGUF's file name, gets the server flags it needs (deploy/named_models.py)."""
    if not model:
        return None
    raw: dict[str, Any] = yaml.safe_load(base.read_text(encoding="utf-8"))
    chat = raw["roles"]["chat"]
    if model in NAMED_MODELS:
        named = NAMED_MODELS[model]
        raw = apply_named_model(raw, named, fetch_named_model(named))
    elif model.startswith(("http://", "https://")):
        chat["endpoint"] = model
        chat["model"] = _check_endpoint(model)
        raw.get("servers", {}).pop("chat", None)
    else:
        path = Path(model).expanduser().resolve()
        _check_gguf(path)
        shipped = named_model_for_path(path)
        if shipped is not None:
            raw = apply_named_model(raw, shipped, path)
        else:
            chat["model"] = path.stem
            raw["servers"]["chat"]["model_path"] = str(path)
    out = data_dir / "models.eval.yaml"
    out.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return out


SUITES: dict[str, tuple[EvalTask, ...]] = {"main": TASKS, "heldout": HELDOUT_TASKS, "all": TASKS + HELDOUT_TASKS}


def select_tasks(ids: str, smoke: bool, suite: str = "main") -> list[EvalTask]:
    pool = SUITES[suite]
    wanted = list(SMOKE_TASKS) if smoke else [part for part in ids.split(",") if part]
    if not wanted:
        return list(pool)
    by_id = {task.id: task for task in pool}
    unknown = [name for name in wanted if name not in by_id and name not in {t.category for t in pool}]
    if unknown:
        raise SystemExit(f"unknown task or category in the {suite} suite: {', '.join(unknown)}")
    return [task for task in pool if task.id in wanted or task.category in wanted]


async def _evaluate(args: argparse.Namespace, tasks: list[EvalTask], data_dir: Path) -> int:
    env = {"DUCKLM_RUNTIME_MAX_STEPS": str(args.max_steps)}
    if not args.recall:
        # Each task is judged on its own: nothing one task stored may be recalled into another.
        env["DUCKLM_RUNTIME_RECALL_TOP_K"] = "0"
    if args.decision:
        env["DUCKLM_RUNTIME_DECISION"] = args.decision
    models_file = models_file_for(args.model, data_dir, repo_root() / "config" / "models.yaml")
    if models_file is not None:
        env["DUCKLM_RUNTIME_MODELS_FILE"] = str(models_file)
    stack = LocalStack(data_dir=data_dir, ports=StackPorts.free(), log_dir=data_dir / "logs", extra_env=env)
    print(f"starting the stack ({args.model or 'default model'}, decision={args.decision or 'default'})…", flush=True)
    await stack.start(timeout=240.0)
    try:
        started = time.perf_counter()
        results = await run_tasks(stack.gateway_url, data_dir / "workspace", tasks, max_steps=args.max_steps)
        wall = time.perf_counter() - started
    finally:
        await stack.stop()
    label = args.label or f"{args.model or 'default model'} ({args.decision or 'default'} decisions)"
    print()
    print(format_report(results, label))
    print(f"wall time {wall:.0f}s on {platform.machine()} with {platform.processor() or 'unknown CPU'}")
    if args.json:
        payload = {
            "label": label, "date": time.strftime("%Y-%m-%d"), "machine": platform.platform(),
            "summary": summary(results), "results": [r.as_json() for r in results],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help=f"a shipped model ({', '.join(NAMED_MODELS)}), a GGUF file or an OpenAI-compatible /v1 endpoint for the chat role")
    parser.add_argument("--decision", default="", choices=["", "staged", "single"],
                        help="how the runtime asks for each step (default: the runtime's setting)")
    parser.add_argument("--tasks", default="", help="comma-separated task ids or categories (default: all)")
    parser.add_argument("--suite", default="main", choices=sorted(SUITES),
                        help="main (the tasks the runtime is worked out on), heldout (other tasks, never tuned on) or all")
    parser.add_argument("--smoke", action="store_true", help=f"only the smoke subset ({', '.join(SMOKE_TASKS)})")
    parser.add_argument("--max-steps", type=int, default=8, help="the runtime's step limit (DUCKLM_RUNTIME_MAX_STEPS)")
    parser.add_argument("--recall", action="store_true",
                        help="keep automatic memory recall on (off by default, so tasks cannot leak into each other)")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--label", default="", help="the name printed with the figures")
    args = parser.parse_args(argv)
    tasks = select_tasks(args.tasks, args.smoke, args.suite)
    with tempfile.TemporaryDirectory(prefix="ducklm-eval-") as data:
        try:
            return asyncio.run(_evaluate(args, tasks, Path(data)))
        except ModelChoiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())

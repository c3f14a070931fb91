"""same_node on a real model: two short epochs of training with the epoch_eval callback scoring each epoch on
the training GPU (the in-memory model, then the saved checkpoint in a child process), and what that took beside
what `prep fit` estimates for the same run.

The HF Trainer Axolotl drives, with the plugin's own callback (Axolotl itself is not needed: on a GPU machine
without it, the plugin package's BasePlugin import is stood in for). Device memory is sampled every 20 ms
device-wide (so the eval child's memory counts), and split into training and eval windows by the callback's
hooks.

    python bench/same_node_gpu.py --model .cache/models/smollm2-135m-instruct --data demo-out/merged.jsonl \\
        --tasks-data ../shared/data [--rows 2000] [--mmlu-limit 20] [--hellaswag-limit 200]

Prints, per scoring path and epoch: the scores, the eval's wall time, the peak device memory during training
and during the eval, the free memory measured at the epoch end; then `prep fit`'s eval memory and time per epoch
for this model on this GPU (--gpu-type, default h200).
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GiB = 2**30


def _plugin_without_axolotl() -> None:
    """The plugin package subclasses Axolotl's BasePlugin at import; a GPU machine without Axolotl gets a stand-in
    (the callback, which is all this script runs, needs nothing of Axolotl)."""
    try:
        import axolotl.integrations.base  # noqa: F401
    except ImportError:
        for name in ("axolotl", "axolotl.integrations", "axolotl.integrations.base"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["axolotl.integrations.base"].BasePlugin = object  # type: ignore[attr-defined]


class Sampler:
    """Device-wide used memory every 20 ms, tagged with the phase the callback says it is in."""

    def __init__(self) -> None:
        import torch

        self.cuda = torch.cuda.is_available()
        self.phase = "train"
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import torch

        while not self._stop.wait(0.02):
            free, total = torch.cuda.mem_get_info()
            self.peak[self.phase] = max(self.peak.get(self.phase, 0.0), float(total - free))

    def __enter__(self) -> Sampler:
        if self.cuda:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.cuda:
            self._thread.join()


def chat_rows(data: Path, tokenizer, rows: int, max_len: int) -> list[dict]:
    roles = {"system": "system", "human": "user", "gpt": "assistant"}
    out = []
    for line in data.read_text().splitlines()[:rows]:
        messages = [{"role": roles[t["from"]], "content": t["value"]} for t in json.loads(line)["conversations"]]
        if tokenizer.chat_template:
            ids = tokenizer.apply_chat_template(messages, tokenize=True, truncation=True, max_length=max_len)
            ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)  # transformers 5: a BatchEncoding
        else:  # a tokenizer without a template (the tiny random Llama of the smoke test)
            text = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
            ids = tokenizer(text, truncation=True, max_length=max_len)["input_ids"]
        out.append({"input_ids": ids, "labels": list(ids)})
    return out


def train_and_score(model_dir: Path, data: Path, tasks_data: Path, how: str, opts: dict, workdir: Path) -> dict:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    _plugin_without_axolotl()
    from plugins.epoch_eval.args import EpochEvalConfig
    from plugins.epoch_eval.callback import EpochEvalCallback

    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if cuda else torch.float32)
    rows = chat_rows(data, tokenizer, opts["rows"], opts["seq_len"])
    args = TrainingArguments(
        output_dir=str(workdir / how),
        num_train_epochs=opts["epochs"],
        per_device_train_batch_size=opts["batch"],
        learning_rate=1e-5,
        save_strategy="epoch",
        logging_steps=10,
        report_to=[],
        bf16=cuda,
        use_cpu=not cuda,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
        processing_class=tokenizer,
    )
    config = EpochEvalConfig.model_validate(
        {
            "mode": "same_node",
            "score_from": how,
            "task_data_dir": str(tasks_data),
            "tasks": [
                {"name": opts["mmlu_task"], "num_fewshot": 5, "metric": "acc", "limit": opts["mmlu_limit"]},
                {"name": "hellaswag_local", "num_fewshot": 10, "metric": "acc_norm", "limit": opts["hellaswag_limit"]},
            ],
            "batch_size": "auto" if cuda else 8,
            "model_args": {"dtype": "bfloat16"} if cuda else {},
            "eval_base_model": True,
        }
    )
    sampler = Sampler()
    free_at_end: list[float] = []

    class Phases(TrainerCallback):
        """Before the eval callback's hooks: the sampler's phase, and the free memory as the eval finds it."""

        def on_train_begin(self, *a, **k):
            sampler.phase = "eval 0"

        def on_step_begin(self, args, state, control, **k):
            sampler.phase = "train"

        def on_save(self, args, state, control, **k):
            if cuda:
                torch.cuda.empty_cache()
                free_at_end.append(float(torch.cuda.mem_get_info()[0]))
            sampler.phase = f"eval {round(state.epoch)}"

    trainer.add_callback(Phases())
    callback = EpochEvalCallback(
        config,
        output_dir=args.output_dir,
        base_model=str(model_dir),
        adapter=None,
        lora_r=None,
        num_epochs=float(opts["epochs"]),
        score_from=how,
        trainer=trainer,
    )
    trainer.add_callback(callback)
    began = time.perf_counter()
    with sampler:
        trainer.train()
    wall = time.perf_counter() - began
    reports = {
        int(p.stem.split("_")[1]): json.loads(p.read_text())
        for p in (Path(args.output_dir) / "eval_reports").glob("epoch_*.json")
    }
    return {"how": how, "wall_s": wall, "peak": sampler.peak, "free_at_end": free_at_end, "reports": reports}


def estimate(model_dir: Path, tasks_data: Path, opts: dict, gpu_type: str) -> list[tuple[str, str, str]]:
    """prep fit's eval rows for this model and run on one GPU of `gpu_type` (each score_from)."""
    from prep.sizing.checks import run_preflight
    from prep.sizing.config import PreflightConfig
    from prep.sizing.fit import given_machine
    from prep.sizing.gpus import GPUS
    from prep.sizing.timing import Timing

    rows = []
    for how in ("memory", "checkpoint"):
        recipe = {
            "base_model": str(model_dir.resolve()),
            "datasets": [],
            "sequence_len": opts["seq_len"],
            "micro_batch_size": opts["batch"],
            "num_epochs": opts["epochs"],
            "bf16": True,
            "save_strategy": "epoch",
            "output_dir": "out",
            "epoch_eval": {
                "mode": "same_node",
                "score_from": how,
                "task_data_dir": str(tasks_data.resolve()),
                "eval_base_model": True,
                "tasks": [
                    {"name": opts["mmlu_task"], "num_fewshot": 5, "metric": "acc", "limit": opts["mmlu_limit"]},
                    {
                        "name": "hellaswag_local",
                        "num_fewshot": 10,
                        "metric": "acc_norm",
                        "limit": opts["hellaswag_limit"],
                    },
                ],
            },
        }
        with tempfile.TemporaryDirectory() as d:
            machine = given_machine(1, None, 1, 64.0, 100.0, Path(d), GPUS[gpu_type], elsewhere=True)
            timing = Timing(tokens_per_epoch=opts["rows"] * opts["seq_len"], rows_per_epoch=opts["rows"])
            report = run_preflight(recipe, Path(d), PreflightConfig(), machine, inputs=False, timing=timing)
        for f in report.findings:
            if f.label in ("eval memory / GPU", "eval / epoch"):
                rows.append((how, f.label, f"{f.need} ({f.have}): {f.note}"))
    return rows


@click.command()
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--tasks-data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--rows", default=2000, show_default=True)
@click.option("--epochs", default=2, show_default=True)
@click.option("--batch", default=8, show_default=True)
@click.option("--seq-len", default=512, show_default=True)
@click.option("--mmlu-task", default="mmlu_local", show_default=True, help="the MMLU group, or one subject's task")
@click.option("--mmlu-limit", default=20, show_default=True, help="rows per MMLU subject")
@click.option("--hellaswag-limit", default=200, show_default=True)
@click.option("--gpu-type", default="h200", show_default=True, help="the GPU prep fit's estimate is for")
@click.option("--paths", default="memory,checkpoint", show_default=True, help="score_from values to run")
def main(model_dir: Path, data: Path, tasks_data: Path, gpu_type: str, paths: str, **opts) -> None:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"same_node on {model_dir.name}, {device}: {opts}")
    with tempfile.TemporaryDirectory() as work:
        for how in paths.split(","):
            run = train_and_score(model_dir, data, tasks_data, how, opts, Path(work))
            print(f"\nscore_from {how}: {run['wall_s']:.1f} s for {opts['epochs']} epochs and their evals")
            print(f"  peak device memory while training: {run['peak'].get('train', 0) / GiB:.2f} GiB")
            print(f"  free at each epoch end (cache emptied): {[round(f / GiB, 1) for f in run['free_at_end']]} GiB")
            for epoch, r in sorted(run["reports"].items()):
                scores = ", ".join(
                    f"{n} {t['metric']} {t.get('value', float('nan')):.4f}" for n, t in r["tasks"].items()
                )
                peak = run["peak"].get(f"eval {epoch}", 0.0) / GiB
                print(f"  epoch {epoch}: {r['status']}, {scores}; eval {r['wall_time_s']:.1f} s, peak {peak:.2f} GiB")
    print(f"\nprep fit's estimate ({gpu_type}):")
    for how, label, figure in estimate(model_dir, tasks_data, opts, gpu_type):
        print(f"  score_from {how}: {label} {figure}")


if __name__ == "__main__":
    main()

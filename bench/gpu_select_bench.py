"""Rows/s of the two model-dependent select paths on a GPU (or a CPU): all-MiniLM-L6-v2 prompt embeddings (with
their NMI on MMLU's 57 subjects, as bench/select_embed_bench.py measures it) and IFD scoring with the
SmolLM2-135M shape (prep/select/ifd.py). Two steps, because the GPU machine has no network, none of this
project's other dependencies and room for 64 MiB of carried files:

    # here, after `make models`: the carried folder (MiniLM in float16, SmolLM2's config and tokenizer without
    # its weights, the OpenOrca sample and the MMLU questions), about 55 MB
    .venv/bin/python bench/gpu_select_bench.py pack --out .cache/gpu
    # there (torch, transformers, sentence-transformers, numpy, scikit-learn; nothing else from this project):
    python bench/gpu_select_bench.py run --dir .cache/gpu --device cuda

`run` imports only those libraries and prep/select/ifd.py (numpy, tqdm). SmolLM2 runs with random weights of
its real shape (its 538 MB of weights do not fit the carry): speed depends on shapes, not values, and the IFD
values it prints are meaningless. Rows are the 1,000 OpenOrca rows at their real lengths; embeddings are
their prompts (human turns), repeated to `--embed-rows`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SMOLLM2_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)


def pack(out: Path, models: Path, data: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from prep.benchmarks import mmlu

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    SentenceTransformer(str(models / "all-MiniLM-L6-v2"), device="cpu").half().save(str(out / "minilm"))
    (out / "smollm2").mkdir()
    for name in SMOLLM2_FILES:
        shutil.copy(models / "SmolLM2-135M-Instruct" / name, out / "smollm2" / name)
    shutil.copy(data / "openorca/openorca_gpt4_sample.jsonl", out / "openorca.jsonl")
    with (out / "mmlu.jsonl").open("w") as f:
        for subject in mmlu.subjects(data):
            for q in mmlu.read_split(mmlu.split_path(data, subject, "test")):
                f.write(json.dumps({"subject": subject, "question": q.question}) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"packed {out} ({size / 2**20:.1f} MiB; the device tool carries 64 MiB)")


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def embeddings(folder: Path, device: str, rows: int, batch_size: int, mmlu_rows: int | None) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import normalized_mutual_info_score

    mmlu = [json.loads(x) for x in (folder / "mmlu.jsonl").read_text().splitlines()][:mmlu_rows]
    orca = [json.loads(x)["question"] for x in (folder / "openorca.jsonl").read_text().splitlines()]
    prompts = (orca * (rows // len(orca) + 1))[:rows]
    for dtype in (torch.float32, torch.float16) if device.startswith("cuda") else (torch.float32,):
        model = SentenceTransformer(str(folder / "minilm"), device=device, model_kwargs={"dtype": dtype})
        model.max_seq_length = 256  # select.embed.max_tokens and semantic_dedup.max_tokens default
        model.encode(orca[:batch_size], batch_size=batch_size)  # warm up
        sync(device)
        start = time.perf_counter()
        model.encode(prompts, batch_size=batch_size, normalize_embeddings=True)
        sync(device)
        orca_s = time.perf_counter() - start
        start = time.perf_counter()
        x = model.encode([r["question"] for r in mmlu], batch_size=batch_size, normalize_embeddings=True)
        sync(device)
        mmlu_s = time.perf_counter() - start
        km = MiniBatchKMeans(57, random_state=0, n_init=3, batch_size=4096).fit(np.asarray(x, dtype=np.float32))
        nmi = normalized_mutual_info_score([r["subject"] for r in mmlu], km.labels_)
        print(
            f"all-MiniLM-L6-v2 ({str(dtype).removeprefix('torch.')}, {device}, batch {batch_size}): "
            f"{rows / orca_s:,.0f} OpenOrca prompts/s ({rows:,} prompts), {len(mmlu) / mmlu_s:,.0f} MMLU questions/s; "
            f"NMI on {len(mmlu):,} MMLU questions' subjects {nmi:.3f}"
        )


def ifd_speed(folder: Path, device: str, rows: int, batch_sizes: list[int]) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from prep.rows import Row
    from prep.select.ifd import IfdScorer, instruction_answer

    tok = AutoTokenizer.from_pretrained(folder / "smollm2")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder / "smollm2"), dtype=dtype).to(device)
    records = [json.loads(x) for x in (folder / "openorca.jsonl").read_text().splitlines()][:rows]
    pairs = []
    for r in records:
        system = [{"from": "system", "value": r["system_prompt"]}] if r["system_prompt"].strip() else []
        turns = [*system, {"from": "human", "value": r["question"]}, {"from": "gpt", "value": r["response"]}]
        pairs.append(instruction_answer(Row(r["id"], "orca", None, None, turns)))
    encoded = [IfdScorer(tok, model, 1, 1024).encode(q, a) for q, a in pairs]
    tokens = sum(len(e[0]) + len(e[2]) for e in encoded if e is not None)
    for batch_size in batch_sizes:
        scorer = IfdScorer(tok, model, batch_size, 1024)
        scorer.score(pairs[:batch_size])  # warm up
        sync(device)
        start = time.perf_counter()
        scorer.score(pairs)
        sync(device)
        seconds = time.perf_counter() - start
        print(
            f"IFD, SmolLM2-135M shape ({str(dtype).removeprefix('torch.')}, {device}, batch {batch_size}): "
            f"{len(pairs) / seconds:,.1f} rows/s, {tokens / seconds:,.0f} tokens/s ({len(pairs)} OpenOrca rows, "
            f"{tokens / len(pairs):.0f} tokens a row through the model); 1.5M such rows: {1.5e6 / (len(pairs) / seconds) / 3600:.1f} h"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="write the folder to carry (here, with the project's venv)")
    p.add_argument("--out", type=Path, default=REPO / ".cache/gpu")
    p.add_argument("--models", type=Path, default=REPO / ".cache/models")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared/data")
    r = sub.add_parser("run", help="measure (on the GPU machine)")
    r.add_argument("--dir", type=Path, default=REPO / ".cache/gpu")
    r.add_argument("--device", default="cuda")
    r.add_argument("--embed-rows", type=int, default=50_000, help="OpenOrca prompts embedded for the timing")
    r.add_argument("--embed-batch", type=int, default=256)
    r.add_argument("--mmlu-rows", type=int, default=None, help="MMLU questions clustered (default: all 14,042)")
    r.add_argument("--ifd-rows", type=int, default=1000)
    r.add_argument("--ifd-batch", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.out, args.models, args.data)
    else:
        embeddings(args.dir, args.device, args.embed_rows, args.embed_batch, args.mmlu_rows)
        ifd_speed(args.dir, args.device, args.ifd_rows, args.ifd_batch)


if __name__ == "__main__":
    main()

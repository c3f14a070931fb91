"""Score the in-memory training model with lm-eval's HFLM, leaving training exactly as it was.

HFLM puts the model in eval mode and does not restore it, sets the tokenizer's pad token in place,
and `simple_evaluate` reseeds python/numpy/torch: so the tokenizer is copied, and the train mode and
every RNG state are restored afterwards (training with and without the plugin draws the same numbers).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from evals.runner import failure, score
from evals.spec import EvalSettings

# model args that only say how to load weights from a path: meaningless (parallelize: an error) for a model object
LOADING_ONLY = {"pretrained", "peft", "delta", "revision", "dtype", "parallelize", "max_memory_per_gpu",
                "max_cpu_memory", "offload_folder", "device_map_option", "trust_remote_code", "device"}  # fmt: skip


@contextmanager
def training_untouched(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    py, np_state, cpu = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        model.train(was_training)
        random.setstate(py)
        np.random.set_state(np_state)
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def evaluate_in_memory(model, tokenizer, settings: EvalSettings, manager) -> dict[str, dict[str, Any]]:
    from lm_eval.models.huggingface import HFLM

    with training_untouched(model), torch.no_grad():
        try:
            lm = HFLM(
                pretrained=model,
                tokenizer=copy.deepcopy(tokenizer),
                batch_size=settings.batch_size,
                **{k: v for k, v in settings.model_args.items() if k not in LOADING_ONLY},
            )
        except Exception as exc:
            return {spec.name: failure(spec, exc) for spec in settings.tasks}
        return score(lm, settings, manager)

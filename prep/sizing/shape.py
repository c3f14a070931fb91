"""Parameter counts of a model from its config.json alone: built on the meta device, no weights read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from prep.sizing.errors import PreflightError


class ModelConfigError(PreflightError):
    """The base model's config.json could not be read (offline, gated, or a wrong path)."""


@dataclass(frozen=True)
class ModelShape:
    params: int
    largest_layer: int  # parameters of the largest single module (DeepSpeed gathers one at a time)
    hidden: int
    layers: int
    heads: int
    vocab: int
    linear: Counter  # (module name, in_features, out_features) -> count, decoder Linear layers only
    linear_params: int  # parameters in those layers: what bitsandbytes quantizes
    modules: dict[str, int]  # module name -> its own parameters

    def lora_params(self, r: int, targets: list[str] | None) -> int:
        """LoRA adds r*(in+out) per targeted Linear; `targets=None` means every Linear (lora_target_linear)."""
        return sum(r * (i + o) * n for (name, i, o), n in self.linear.items() if targets is None or name in targets)

    def module_params(self, names: list[str]) -> int:
        """Parameters of whole modules trained alongside an adapter (`lora_modules_to_save`)."""
        return sum(n for name, n in self.modules.items() if name.rsplit(".", 1)[-1] in names)


def load_shape(model: str, trust_remote_code: bool = False) -> ModelShape:
    """Count parameters of `model` (a local directory or hub id) without loading its weights."""
    import torch
    from torch import nn
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        why = " ".join(str(e).split())  # one line, whatever the library wrote
        raise ModelConfigError(f"cannot read the config.json of base_model {model!r}: {why}") from e
    with torch.device("meta"):
        net = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    text = config.get_text_config()
    head = net.get_output_embeddings()
    linear: Counter = Counter()
    named: dict[str, int] = {}
    for name, module in net.named_modules():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        if own:
            named[name] = own
        if isinstance(module, nn.Linear) and module is not head:
            linear[(name.rsplit(".", 1)[-1], module.in_features, module.out_features)] += 1
    return ModelShape(
        params=sum(p.numel() for p in net.parameters()),
        largest_layer=max(named.values()),
        hidden=text.hidden_size,
        layers=text.num_hidden_layers,
        heads=text.num_attention_heads,
        vocab=text.vocab_size,
        linear=linear,
        linear_params=sum(i * o * n for (_, i, o), n in linear.items()),
        modules=named,
    )

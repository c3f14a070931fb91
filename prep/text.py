"""Text normalization shared by dedup and decontamination, so both sides of a comparison agree."""

from __future__ import annotations

import re

import numpy as np
import xxhash

from prep.rows import Row

TAG = re.compile(r"\[[^\]\n]{0,40}\]")  # HellaSwag's WikiHow "[title]"/"[step]" markers
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric runs: case, whitespace and punctuation do not matter."""
    return _WORD.findall(TAG.sub(" ", text.lower()))


def prompt_text(row: Row) -> str:
    """The human turns: what dedup compares (system prompts vary per row for the same question)."""
    return "\n".join(row.turns("human"))


def response_text(row: Row) -> str:
    return "\n".join(row.turns("gpt"))


def word_hashes(tokens: list[str]) -> np.ndarray:
    """Stable 64-bit hashes (xxh3, not Python's salted hash), so runs are reproducible across processes."""
    return np.fromiter((xxhash.xxh3_64_intdigest(t.encode()) for t in tokens), dtype=np.uint64, count=len(tokens))


_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible modulo 2**64
_INV = np.uint64(pow(0x9E3779B97F4A7C15, -1, 2**64))
_POW = np.ones(1, dtype=np.uint64)
_IPOW = np.ones(1, dtype=np.uint64)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """_MULT**i and its inverse for i < n, grown on demand and cached."""
    global _POW, _IPOW
    if len(_POW) < n:
        size = max(n, 2 * len(_POW))
        pw, ipw = np.empty(size, dtype=np.uint64), np.empty(size, dtype=np.uint64)
        pw[0] = ipw[0] = 1
        with np.errstate(over="ignore"):
            for i in range(1, size):  # a few thousand steps, once
                pw[i] = pw[i - 1] * _MULT
                ipw[i] = ipw[i - 1] * _INV
        _POW, _IPOW = pw, ipw
    return _POW[:n], _IPOW[:n]


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """Hashes of every run of n consecutive tokens: a polynomial hash from prefix sums modulo 2**64, so the
    cost is a handful of numpy passes whatever n is (3x faster than one pass per gram position at n=13)."""
    if len(hashes) < n or n < 1:
        return np.empty(0, dtype=np.uint64)
    pw, ipw = _powers(len(hashes) + 1)
    prefix = np.zeros(len(hashes) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(hashes * pw[: len(hashes)], out=prefix[1:])
        return (prefix[n:] - prefix[:-n]) * ipw[: len(hashes) - n + 1]

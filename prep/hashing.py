"""Word, n-gram and word-sequence hashes of text, for dedup and decontamination.

Our own kernels, compiled with numba, because they are measurably faster than the library route: one pass over
the text's code points replaces a regex findall, a hash call per word and several numpy passes per n-gram
(11 us against 79 us per 1.6k-char bench row, prompt and response). Hashes are deterministic across processes
and runs (no salted `hash()`), so worker processes and the main process agree."""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import njit

from prep.rows import Row
from prep.text import TAG, prompt_text

MATCH_MIN_LEN = 2  # decontamination's words: so "A. foo B. bar" option labels and a/an edits do not matter
_EMPTY = np.empty(0, dtype=np.uint64)
_B = np.uint64(0x9E3779B97F4A7C15)  # odd, so the polynomial hashes of sequences spread over all 64 bits


@cache
def alnum_table() -> np.ndarray:
    """A flag per Unicode code point: str.isalnum, which is what the regex [^\\W_] matches. Built once (0.3 s)."""
    return np.fromiter((chr(i).isalnum() for i in range(0x110000)), dtype=np.bool_, count=0x110000)


def codepoints(text: str) -> np.ndarray:
    """Lower-cased code points, with HellaSwag's "[title]"/"[step]" markers blanked as `text.words` does."""
    text = text.lower()
    if "[" in text:
        text = TAG.sub(" ", text)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


@njit(cache=True, nogil=True)
def _mix(h: np.uint64) -> np.uint64:
    """MurmurHash3's 64-bit finalizer: spreads the polynomial hashes' weak low bits."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@njit(cache=True, nogil=True)
def _words(cps: np.ndarray, alnum: np.ndarray, min_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hashes of all alphanumeric runs; hashes of those of at least `min_len` code points, with the index of
    the first of them on each line (a line break starts a line) followed by their count. One pass for both,
    since dedup reads every word of a prompt and decontamination its longer words."""
    every = np.empty(len(cps) // 2 + 1, dtype=np.uint64)
    long = np.empty(len(cps) // 2 + 1, dtype=np.uint64)
    lines = np.empty(len(cps) + 2, dtype=np.int64)
    lines[0] = 0
    n_every, n_long, n_lines = 0, 0, 1
    h, run = np.uint64(0), 0
    for i in range(len(cps) + 1):
        c = cps[i] if i < len(cps) else np.uint32(32)
        if alnum[c]:
            h = h * np.uint64(0x100000001B3) + np.uint64(c + 1)
            run += 1
            continue
        if run:
            every[n_every] = _mix(h ^ np.uint64(run))
            n_every += 1
            if run >= min_len:
                long[n_long] = every[n_every - 1]
                n_long += 1
        h, run = np.uint64(0), 0
        if c == 10:
            lines[n_lines] = n_long
            n_lines += 1
    lines[n_lines] = n_long
    return every[:n_every].copy(), long[:n_long].copy(), lines[: n_lines + 1].copy()


@njit(cache=True, nogil=True)
def _span(hashes: np.ndarray, start: int, end: int) -> np.uint64:
    s = np.uint64(0)
    for k in range(start, end):
        s = s * _B + hashes[k]
    return _mix(s ^ np.uint64(end - start))


@njit(cache=True, nogil=True)
def _ngrams(hashes: np.ndarray, n: int) -> np.ndarray:
    """_span of every window of n, rolled: three operations a window instead of n."""
    m = len(hashes) - n + 1
    out = np.empty(max(m, 0), dtype=np.uint64)
    if m <= 0:
        return out
    top = np.uint64(1)
    for _ in range(n - 1):
        top *= _B
    s = np.uint64(0)
    for k in range(n):
        s = s * _B + hashes[k]
    out[0] = _mix(s ^ np.uint64(n))
    for i in range(1, m):
        s = (s - hashes[i - 1] * top) * _B + hashes[i + n - 1]
        out[i] = _mix(s ^ np.uint64(n))
    return out


@njit(cache=True, nogil=True)
def _position(index: np.ndarray, h: np.uint64) -> int:
    """Where `h` is in the sorted `index`, or -1."""
    pos = np.searchsorted(index, h)
    return int(pos) if pos < len(index) and index[pos] == h else -1


@njit(cache=True, nogil=True)
def _find(
    hashes: np.ndarray, lines: np.ndarray, n: int, questions: np.ndarray, grams: np.ndarray, bitmap: np.ndarray
) -> tuple[int, int]:
    """(1, i) when the whole text or one of its lines is questions[i]; (2, i) when one of its n-grams is
    grams[i], tested first against `bitmap` (a bit per low bits of each gram, cache-sized); else (0, -1)."""
    pos = _position(questions, _span(hashes, 0, len(hashes)))
    if pos >= 0:
        return 1, pos
    for i in range(len(lines) - 1):
        pos = _position(questions, _span(hashes, lines[i], lines[i + 1]))
        if pos >= 0:
            return 1, pos
    mask = np.uint64(len(bitmap) * 8 - 1)
    for g in _ngrams(hashes, n):
        low = g & mask
        if (bitmap[low >> np.uint64(3)] >> (low & np.uint64(7))) & 1:
            pos = _position(grams, g)
            if pos >= 0:
                return 2, pos
    return 0, -1


def word_hashes(text: str, min_len: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the words of `min_len` or more characters of `text` (case, punctuation and whitespace do not
    matter) and its line bounds."""
    _, hashes, lines = _words(codepoints(text), alnum_table(), min_len)
    return hashes, lines


def prompt_words(row: Row) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The prompt's word hashes (all; MATCH_MIN_LEN or more characters; their line bounds), computed once per
    row for decontamination, exact and near dedup."""
    if "prompt_words" not in row.memo:
        row.memo["prompt_words"] = _words(codepoints(prompt_text(row)), alnum_table(), MATCH_MIN_LEN)
    return row.memo["prompt_words"]


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """A hash of every run of n consecutive hashes (word n-grams, or character n-grams from code points)."""
    return _ngrams(hashes, n) if n >= 1 else _EMPTY


def sequence_hash(hashes: np.ndarray) -> int:
    """One hash of a whole word sequence: equal sequences, equal hashes."""
    return int(_span(hashes, 0, len(hashes)))


def find_in_index(
    hashes: np.ndarray, lines: np.ndarray, n: int, questions: np.ndarray, grams: np.ndarray, bitmap: np.ndarray
) -> tuple[int, int]:
    """Whether a text's word `hashes` with their `lines` bounds (from `word_hashes`) are, or have a line that
    is, one of the sorted sequence hashes `questions`, or share an n-gram with the sorted `grams`:
    (1, position in questions), (2, position in grams) or (0, -1)."""
    return _find(hashes, lines, n, questions, grams, bitmap)

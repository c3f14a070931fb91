"""Rows a model should not learn from: empty turns, refusals and AI-identity boilerplate, cut-off answers,
rows outside the length bounds."""

from __future__ import annotations

import re

import ahocorasick

from prep.config import QualityConfig
from prep.rows import Row
from prep.text import response_text

# Word boundaries everywhere, so "napalm" or "palm tree" never match a model name.
REFUSAL = re.compile(
    "|".join(
        [
            r"\bI(?:'m| am) sorry,? but (?:I|as an AI)\b.{0,20}?\b(?:cannot|can't|can not|am unable|'m unable|won't|will not)\b",
            r"\bI apologi[sz]e,? but I (?:cannot|can't|can not|am unable|'m unable|won't|will not)\b",
            r"\bI (?:cannot|can't|can not|am unable to|'m unable to|won't|will not) (?:help|assist|comply|fulfill)"
            r"(?: you)? with (?:that|this|your request)\b",
            r"\b(?:against|violates?) (?:my|OpenAI's) (?:programming|guidelines|content polic(?:y|ies)|use case polic(?:y|ies))\b",
        ]
    ),
    re.IGNORECASE,
)

AI_IDENTITY = re.compile(
    "|".join(
        [
            r"\bas an? (?:AI|artificial intelligence) (?:language )?model\b",
            r"\bas a (?:large )?language model\b",
            r"\bI(?:'m| am) (?:just )?(?:an? )?(?:AI language model|(?:large )?language model|AI model|AI assistant|AI chatbot)\b",
            r"\b(?:language model|AI|assistant|chatbot|model) (?:trained|developed|created|built|made) by\b",
            r"\b(?:trained|developed|created|built|made) by (?:OpenAI|LMSYS|Large Model Systems)\b",
            r"\b(?:I(?:'m| am)|my name is|as) (?:ChatGPT|GPT-?[34](?:\.5)?|Vicuna|Bard|PaLM|Claude|LLaMA|an OpenAI model)\b",
            r"\bmy (?:knowledge cutoff|knowledge cut-off|training data (?:only )?(?:goes|extends))\b",
        ]
    ),
    re.IGNORECASE,
)

# Cheap substring checks on the lower-cased answer; the regexes run only near the hints they find (the regexes
# alone were the pipeline's costliest step). One Aho-Corasick pass finds the hints of both families.
REFUSAL_HINTS = ("sorry", "apologi", "cannot", "can't", "can not", "unable", "won't", "will not", "against", "violat")
AI_IDENTITY_HINTS = (
    "model",
    "assistant",
    "chatbot",
    "trained by",
    "developed by",
    "created by",
    "built by",
    "made by",
    "chatgpt",
    "gpt",
    "vicuna",
    "bard",
    "palm",
    "claude",
    "llama",
    "openai",
    "knowledge cut",
    "training data",
)  # each AI_IDENTITY alternative contains one of these

MAX_MATCH = 200  # longer than any match of REFUSAL or AI_IDENTITY


def search_near(pattern: re.Pattern[str], text: str, hint_ends: list[int]) -> bool:
    """Whether `pattern` matches `text`, searching only MAX_MATCH either side of each hint's end (windows merged
    where they overlap). Every match holds a hint and is shorter than MAX_MATCH, so it lies inside its hint's
    window and ends before the window does: the window's end, where \\b would see an end of text, is never
    part of a match. At the window's start \\b sees the character before it, as in the whole text."""
    windows: list[list[int]] = []
    for end in hint_ends:
        if windows and end - MAX_MATCH <= windows[-1][1]:
            windows[-1][1] = end + MAX_MATCH
        else:
            windows.append([max(0, end - MAX_MATCH), end + MAX_MATCH])
    return any(pattern.search(text, lo, hi) for lo, hi in windows)


_SENTENCE_END = (*".!?\"')]}>`*_|”’…:;", "```")  # noqa: RUF001 (closing quotes are meant)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d+[.)]|[a-zA-Z][.)])\s")


class EmptyTurn:
    def __call__(self, row: Row) -> str | None:
        body = [t for t in row.conversations if t["from"] != "system"]
        return "empty_turn" if any(not t["value"].strip() for t in body) else None


class Boilerplate:
    """Refusals and "As an AI language model" answers teach the model to refuse or to be someone else."""

    def __init__(self, config: QualityConfig) -> None:
        self.checks = [
            (reason, pattern)
            for reason, pattern, on in [
                ("refusal", REFUSAL, config.refusals),
                ("ai_identity", AI_IDENTITY, config.ai_identity),
            ]
            if on
        ]
        families = {"refusal": REFUSAL_HINTS, "ai_identity": AI_IDENTITY_HINTS}
        self.hints = ahocorasick.Automaton()
        for family, (reason, _) in enumerate(self.checks):
            for hint in families[reason]:
                self.hints.add_word(hint, family)
        self.hints.make_automaton()

    def __call__(self, row: Row) -> str | None:
        if not self.checks:
            return None
        answer = response_text(row)
        lower = answer.lower()
        hint_ends: list[list[int]] = [[] for _ in self.checks]
        for end, family in self.hints.iter(lower):
            hint_ends[family].append(end)
        for (reason, pattern), ends in zip(self.checks, hint_ends, strict=True):
            if not ends:
                continue
            # lower() keeps positions unless a character changes length (rare): then search the whole answer
            if search_near(pattern, answer, ends) if len(lower) == len(answer) else pattern.search(answer):
                return reason
        return None


class Truncated:
    """The final answer stops mid-sentence: its last line is a long run of words without closing punctuation.
    Short last lines ("Answer: B", "Output: Yes", a signature, a code line) are not judged, nor list items,
    nor answers under twice that length (titles, labels)."""

    def __init__(self, config: QualityConfig) -> None:
        self.min_words = config.truncated_min_words

    def __call__(self, row: Row) -> str | None:
        answer = row.conversations[-1]["value"].rstrip()
        last_line = answer.rsplit("\n", 1)[-1]
        if (
            answer.endswith(_SENTENCE_END)
            or len(last_line.split(None, self.min_words)) < self.min_words
            or len(answer.split(None, 2 * self.min_words)) < 2 * self.min_words
            or _LIST_ITEM.match(last_line)
            or answer.count("```") % 2 == 1
            or last_line[-1:].isdigit()
        ):
            return None
        return "truncated"


class TokenCounter:
    """Lengths in tokens when a tokenizer is set, else characters. Remembers the last row, so the length
    filter and the length statistics tokenize each row once."""

    def __init__(self, tokenizer: str | None) -> None:
        self.unit = "tokens" if tokenizer else "chars"
        self._tok = None
        if tokenizer:
            from transformers import AutoTokenizer  # heavy import, only when lengths are in tokens

            self._tok = AutoTokenizer.from_pretrained(tokenizer)
        self._last: tuple[Row, tuple[int, int]] | None = None  # holds the row, so its identity stays unique

    def prompt_response(self, row: Row) -> tuple[int, int]:
        if self._last is not None and self._last[0] is row:
            return self._last[1]
        prompt = "\n".join(t["value"] for t in row.conversations if t["from"] != "gpt")
        answer = response_text(row)
        if self._tok is None:
            counts = (len(prompt), len(answer))
        else:
            ids = self._tok([prompt, answer], add_special_tokens=False)["input_ids"]
            counts = (len(ids[0]), len(ids[1]))
        self._last = (row, counts)
        return counts


class Length:
    def __init__(self, config: QualityConfig, counter: TokenCounter) -> None:
        self.counter = counter
        tokens = counter.unit == "tokens"
        self.min_response = config.min_response_tokens if tokens else config.min_response_chars
        self.max_total = config.max_total_tokens if tokens else config.max_total_chars

    def __call__(self, row: Row) -> str | None:
        prompt, answer = self.counter.prompt_response(row)
        if answer < self.min_response:
            return "too_short"
        return "too_long" if prompt + answer > self.max_total else None

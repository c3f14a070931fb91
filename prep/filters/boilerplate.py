"""Refusals and "As an AI language model" answers: they teach the model to refuse or to be someone else."""

from __future__ import annotations

import re

import ahocorasick

from prep.rows import Row
from prep.step import RowFilter, Verdict
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


def _automaton() -> ahocorasick.Automaton:
    hints = ahocorasick.Automaton()
    for family, words in enumerate((REFUSAL_HINTS, AI_IDENTITY_HINTS)):
        for hint in words:
            hints.add_word(hint, family)
    hints.make_automaton()
    return hints


_HINTS = _automaton()


def hint_ends(row: Row) -> tuple[bool, list[list[int]]]:
    """Where the hints of each family (refusal, ai_identity) end in the row's answer, and whether lower-casing
    kept the answer's positions. One pass for both filters: the result is kept in the row's memo."""
    if "boilerplate_hints" not in row.memo:
        answer = response_text(row)
        lower = answer.lower()
        ends: list[list[int]] = [[], []]
        for end, family in _HINTS.iter(lower):
            ends[family].append(end)
        row.memo["boilerplate_hints"] = (len(lower) == len(answer), ends)
    return row.memo["boilerplate_hints"]


class _Boilerplate(RowFilter):
    family: int
    pattern: re.Pattern[str]

    def check(self, row: Row) -> Verdict | None:
        same_positions, ends = hint_ends(row)
        if not ends[self.family]:
            return None
        answer = response_text(row)
        # lower() keeps positions unless a character changes length (rare): then search the whole answer
        found = search_near(self.pattern, answer, ends[self.family]) if same_positions else self.pattern.search(answer)
        return Verdict(self.name) if found else None


class Refusal(_Boilerplate):
    """ "I'm sorry, but I cannot", "against my guidelines"."""

    name = "refusal"
    libraries = ("pyahocorasick",)
    family, pattern = 0, REFUSAL


class AiIdentity(_Boilerplate):
    """ "As an AI language model", "I am ChatGPT/Vicuna", "trained by OpenAI"; word boundaries everywhere, so
    "napalm" or "palm tree" never match."""

    name = "ai_identity"
    libraries = ("pyahocorasick",)
    family, pattern = 1, AI_IDENTITY

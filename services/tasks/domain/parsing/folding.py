"""Accent folding with a map back to the original text (every span indexes the original)."""

from __future__ import annotations

import unicodedata

from services.tasks.domain.units import fold_char


class Folded:
    """Folded copy of a text with a map from folded offsets to original offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        chars: list[str] = []
        starts: list[int] = []
        for i, ch in enumerate(text):
            if ch != "\n" and ch.isspace():
                ch = " "  # nbsp, tabs, \r …: one plain space, so patterns can use " "
            for f in fold_char(ch):
                chars.append(f)
                starts.append(i)
        starts.append(len(text))
        self.f = "".join(chars)
        self._starts = starts

    def orig(self, pos: int) -> int:
        return self._starts[pos]

    def span(self, a: int, b: int) -> tuple[int, int]:
        return self._starts[a], self._starts[b]

    def original(self, a: int, b: int) -> str:
        oa, ob = self.span(a, b)
        return self.text[oa:ob]

    def is_upper_at(self, pos: int) -> bool:
        return pos < len(self.f) and self.text[self._starts[pos]].isupper()


def clean(s: str) -> str:
    """NFC, whitespace runs (hard wraps, nbsp) collapsed to one space."""
    return " ".join(unicodedata.normalize("NFC", s).split())

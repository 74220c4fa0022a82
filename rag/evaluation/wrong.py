"""Wrong answers made from right ones, to measure how often verification lets them through.

Labelled data rarely shows the errors a small model makes most: a number changed ("completed
in 1887"), a name swapped ("written in Python"). `perturb` makes them from a correct answer,
FactCC-style: one number changed (a CONTRADICT), or one capitalised word or identifier replaced
by one from another answer that the passages do not hold (an NEI).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

CONTRADICT, NEI = "CONTRADICT", "NEI"


@dataclass(frozen=True)
class Perturbed:
    text: str
    label: str
    inserted: str
    """The changed part: the wrong answer got through when this survives verification."""


_NUMBER = re.compile(r"(?<![\w.-])\d+(?:\.\d+)?(?![\w.]*\d)")
_NAME = re.compile(r"(?<=\s)(?:[A-Z][\w-]*|[a-z]+\d[\w-]*)")


def _other_number(value: str) -> str:
    if "." in value:
        return f"{float(value) * 2:g}"
    number = int(value)
    return str(number + 1 if number < 10 else number * 2)


def perturb(claim: str, passage: str, names: Sequence[str], seed: int) -> list[Perturbed]:
    """Wrong versions of a correct claim: see the module docstring. `names` are
    capitalised words or identifiers from other claims; the replacement is picked by `seed`
    and never occurs in the passage."""
    made: list[Perturbed] = []
    number = _NUMBER.search(claim)
    if number:
        other = _other_number(number.group())
        if other not in passage:
            text = claim[: number.start()] + other + claim[number.end() :]
            made.append(Perturbed(text, CONTRADICT, other))
    name = _NAME.search(claim)
    candidates = [n for n in names if n.lower() not in passage.lower()]
    if name and candidates:
        other = candidates[seed % len(candidates)]
        made.append(Perturbed(claim[: name.start()] + other + claim[name.end() :], NEI, other))
    return made


def names_in(claims: Sequence[str]) -> list[str]:
    """The capitalised words and identifiers `perturb` may swap in, sorted."""
    return sorted({m.group() for c in claims for m in _NAME.finditer(c)})

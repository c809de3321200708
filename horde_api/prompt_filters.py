"""Prompt filters: moderators' regexes that refuse prompts illegal to render, or turn the NSFW
censor on for a safe-for-work request that names explicit things.

The filter types are the public horde's: a prompt matching a filter of the first group (10, 11:
minors) and one of the second (20: sexual content) is refused with 400 `CorruptPrompt`; ours
adds type 29 (the last of the public range 10..29), explicit words that make a request with
`nsfw: false` censored (its worker runs the safety checker). Only the positive prompt is checked
(the text before `###`).

The filters are compiled once per type and held in memory; each API process reloads them from
the database in its janitor thread (every `HORDE_FILTER_REFRESH_SECONDS`) and at once after a
change it made itself, so checking a prompt costs no I/O. They are RE2 expressions: RE2 matches
one alternation of hundreds of filters in time linear in the prompt (Python's `re` tries each
alternative at each position, 20x slower at 300 filters: docs/benchmarks.md), and no filter can
backtrack catastrophically. The price is RE2's syntax: no lookaround, no backreferences.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum

import re2
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from horde_api.db.models import PromptFilter
from horde_protocol import split_prompt

log = logging.getLogger(__name__)


class FilterType(IntEnum):
    MINORS = 10
    MINORS_OTHER = 11
    SEXUAL = 20
    EXPLICIT_WORDS = 29  # ours: censor, do not refuse


# A prompt gets one point of suspicion per group it matches; this many refuse it.
SUSPICION_GROUPS: tuple[tuple[FilterType, ...], ...] = (
    (FilterType.MINORS, FilterType.MINORS_OTHER),
    (FilterType.SEXUAL,),
)
REFUSING_SUSPICION = 2


class PromptVerdict(str, Enum):
    ALLOWED = "allowed"
    CENSORED = "censored"  # allowed, with the NSFW censor on
    REFUSED = "refused"


@dataclass(frozen=True)
class PromptCheck:
    verdict: PromptVerdict
    suspicion: int
    matches: list[str] = field(default_factory=list)


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a moderator's typo is answered with a 400, not logged
    return options


_OPTIONS = _options()


def _compile(pattern: str) -> re2._Regexp:
    return re2.compile(pattern, _OPTIONS)


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be a filter, or None."""
    try:
        compiled = _compile(pattern)
    except re2.error as error:
        detail = error.args[0] if error.args else error
        reason = detail.decode() if isinstance(detail, bytes) else detail
        return (
            f"not a valid regular expression: {reason} (filters are RE2 expressions:"
            " no lookaround, no backreferences)"
        )
    if compiled.fullmatch("") is not None:
        return "matches the empty text, so it would match every prompt"
    return None


class CompiledFilters:
    """One compiled alternation per filter type."""

    def __init__(self, rows: Iterable[tuple[int, str]]) -> None:
        patterns: dict[int, list[str]] = {}
        for filter_type, regex in rows:
            if regex_problem(regex) is None:
                patterns.setdefault(filter_type, []).append(f"(?:{regex})")
        self._compiled = {
            filter_type: _compile("|".join(parts)) for filter_type, parts in patterns.items()
        }

    def _search(self, filter_type: int, text: str) -> str | None:
        compiled = self._compiled.get(filter_type)
        found = compiled.search(text) if compiled is not None else None
        return found.group() if found else None

    def check(self, prompt: str, nsfw: bool, only_type: int | None = None) -> PromptCheck:
        positive, _ = split_prompt(prompt)
        suspicion, matches = 0, []
        for group in SUSPICION_GROUPS:
            for filter_type in group:
                if only_type is not None and filter_type != only_type:
                    continue
                found = self._search(filter_type, positive)
                if found is not None:
                    suspicion += 1
                    matches.append(found)
                    break
        if suspicion >= REFUSING_SUSPICION:
            return PromptCheck(PromptVerdict.REFUSED, suspicion, matches)
        if only_type in (None, FilterType.EXPLICIT_WORDS):
            explicit = self._search(FilterType.EXPLICIT_WORDS, positive)
            if explicit is not None:
                matches.append(explicit)
                if not nsfw:
                    return PromptCheck(PromptVerdict.CENSORED, suspicion, matches)
        return PromptCheck(PromptVerdict.ALLOWED, suspicion, matches)


class FilterCache:
    """The compiled filters of this process, reloaded from the database outside requests."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self.filters = CompiledFilters([])

    def reload(self) -> None:
        with self._sessions() as session:
            rows = session.execute(select(PromptFilter.filter_type, PromptFilter.regex)).all()
        compiled = CompiledFilters((int(t), str(r)) for t, r in rows)
        with self._lock:
            self.filters = compiled

    def check(self, prompt: str, nsfw: bool) -> PromptCheck:
        return self.filters.check(prompt, nsfw)

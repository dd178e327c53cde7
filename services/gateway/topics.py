r"""AMQP topic patterns (`*` exactly one word, `#` zero or more words), matched in time linear in the topic.

A socket's patterns are compiled once, at its hello, each to one regular expression over "." + topic
(so that every word, the first too, starts with a dot). Python's `re` backtracks, so the expression is
built so that it has nothing to try twice:

- a word is `\.[^.]*+`: possessive, a word is never split; a literal word must end where a word ends;
- a run of `#` is one `#` (`#.#` matches what `#` matches);
- every `#` but the last is an atomic, lazy search for the fixed words that follow it, up to the next
  `#`. The first place they fit is as good as any later one (the rest can only start later then), so
  the engine never comes back to try another;
- only the last `#` backtracks, over the fixed words at the end, once per word of the topic.

    "a.#.b.*.#.c"  ->  \.a  (?>(?:\.[^.]*+)*?\.b\.[^.]*+)  (?:\.[^.]*+)*\.c     (boundaries left out)

So one match costs at most (words of the topic) x (words of the pattern) steps, whatever the pattern.
"""

import re
from collections.abc import Iterable

WORD = r"\.[^.]*+"
ANY_WORDS = f"(?:{WORD})*"


def _fixed(words: list[str]) -> str:
    # `(?![^.])`: a literal ends where its word ends ("a" is not the start of "ab")
    return "".join(WORD if word == "*" else rf"\.{re.escape(word)}(?![^.])" for word in words)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The expression that fullmatches "." + topic for the topics `pattern` matches."""
    runs: list[list[str]] = [[]]  # the fixed words before the first `#`, between two, after the last
    for word in pattern.split("."):
        if word == "#":
            runs.append([])
        else:
            runs[-1].append(word)
    if len(runs) == 1:
        return re.compile(_fixed(runs[0]))
    head, *between, tail = runs
    searches = "".join(f"(?>{ANY_WORDS}?{_fixed(run)})" for run in between if run)
    return re.compile(_fixed(head) + searches + ANY_WORDS + _fixed(tail))


class Topics:
    """A socket's patterns, compiled once."""

    def __init__(self, patterns: Iterable[str]):
        self._compiled = tuple(compile_pattern(pattern) for pattern in dict.fromkeys(patterns))

    def match(self, topic: str) -> bool:
        subject = "." + topic
        return any(compiled.fullmatch(subject) for compiled in self._compiled)


def topic_matches(pattern: str, topic: str) -> bool:
    return compile_pattern(pattern).fullmatch("." + topic) is not None

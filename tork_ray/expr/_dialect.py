"""Translate expr-lang spellings (&&, ||, !, nil, a ? b : c, ?.) into Jinja, never inside string literals."""

from __future__ import annotations

import re

from tork_ray.expr._values import ExprProblem

# One token at a time; string literals are single tokens so nothing inside them is ever rewritten.
# Numbers are whole tokens so `1.5` is not mistaken for member access. An unterminated string runs to the end
# (Jinja then reports it): were it allowed to fail, each of n stray quotes would rescan the rest, n² in all.
_TOKEN = re.compile(
    r"""
      (?P<str>'(?:[^'\\]|\\.)*(?:'|\\?\Z)|"(?:[^"\\]|\\.)*(?:"|\\?\Z))
    | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_]\w*)
    | (?P<ws>\s+)
    | (?P<op>&&|\|\||!=|\?\?|\?\.|==|<=|>=|\*\*|//|.)
    """,
    re.VERBOSE | re.DOTALL,
)

_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_ATOMS = ("str", "num", "name")


def translate(source: str) -> str:
    """The Jinja text of an expr-lang/Jinja expression. Unchanged when it uses no expr-only syntax."""
    if not any(mark in source for mark in ("&", "|", "!", "?", "nil")):
        return source  # the common case: nothing to rewrite, skip tokenising
    tokens = [(m.lastgroup or "op", m.group()) for m in _TOKEN.finditer(source)]
    # With no stop tokens the top level runs to the end; a stray closer is copied and Jinja reports it.
    return _Translator(tokens).expr(frozenset())


class _Translator:
    """A tiny recursive scanner: brackets nest, `,` and `:` end the operands of a ternary."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        # The text of the last non-space token before each position, computed once (looking back from every
        # `nil` instead would be quadratic).
        self.before: list[str] = []
        last = ""
        for kind, text in tokens:
            self.before.append(last)
            if kind != "ws":
                last = text

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _prev_significant(self) -> str:
        return self.before[self.pos]

    def expr(self, stops: frozenset[str]) -> str:
        """Translate until a token in `stops` at this bracket depth (not consumed)."""
        parts: list[str] = []
        while (token := self._peek()) is not None:
            kind, text = token
            if kind == "op" and text in stops:
                break
            if kind == "op" and text == "?":
                return self._ternary("".join(parts), stops)
            parts.append(self._step(kind, text))
        return "".join(parts)

    def _ternary(self, condition: str, stops: frozenset[str]) -> str:
        # expr-lang's `?:` has the lowest precedence, like Jinja's `x if c else y`: the condition is everything
        # before `?` in this operand, and the else-branch runs to the end of it (right-associative).
        self.pos += 1
        then = self.expr(stops | {":"})
        token = self._peek()
        if token is None or token[1] != ":":
            raise ExprProblem("'?' without a matching ':' (write `a ? b : c`, or `b if a else c`)")
        self.pos += 1
        otherwise = self.expr(stops)
        if not (condition.strip() and then.strip() and otherwise.strip()):
            raise ExprProblem("incomplete ternary: write `a ? b : c`, or `b if a else c`")
        lead = condition[: len(condition) - len(condition.lstrip())]  # keep `{'k': a ? …` spaced as written
        return f"{lead}(({then.strip()}) if ({condition.strip()}) else ({otherwise.strip()}))"

    def _step(self, kind: str, text: str) -> str:
        """Translate one token (or one bracketed group / one `!` operand) and advance."""
        if kind == "op" and text in _CLOSERS:
            return self._group(text)
        if kind == "op" and text == "!":
            self.pos += 1
            return f"(not {self._operand()})"
        if kind == "op" and text == "??":
            raise ExprProblem("the ?? operator is not supported: write `x | default(y)`")
        replacement = {"&&": " and ", "||": " or ", "?.": "."}.get(text) if kind == "op" else None
        if replacement is None and kind == "name" and text == "nil" and self._prev_significant() != ".":
            replacement = "none"
        self.pos += 1
        return text if replacement is None else replacement

    def _group(self, opener: str) -> str:
        closer = _CLOSERS[opener]
        # Inside [] and {} a `:` is a slice or a map key separator, unless a `?` is waiting for it.
        stops = frozenset({",", closer, ":"} if opener != "(" else {",", closer})
        self.pos += 1
        out = [opener]
        while True:
            out.append(self.expr(stops))
            token = self._peek()
            if token is None:
                return "".join(out)  # unbalanced: Jinja reports it
            self.pos += 1
            out.append(token[1])
            if token[1] == closer:
                return "".join(out)

    def _operand(self) -> str:
        """The operand of a unary `!`: one atom or group plus its `.name`, `(...)`, `[...]` suffixes.

        Wrapping it as `(not operand)` keeps expr-lang's precedence (`!a == b` is `(!a) == b`), which Jinja's
        looser `not` would otherwise change.
        """
        while (token := self._peek()) is not None and token[0] == "ws":
            self.pos += 1
        if token is None:
            return ""
        kind, text = token
        if kind == "op" and text == "!":
            self.pos += 1
            return f"(not {self._operand()})"
        if kind == "op" and text in _CLOSERS:
            base = self._group(text)
        elif kind in _ATOMS:
            base = self._step(kind, text)
        else:
            return ""  # `!` followed by an operator: leave it to Jinja to report
        return base + self._suffixes()

    def _suffixes(self) -> str:
        out = []
        while (token := self._peek()) is not None:
            kind, text = token
            nxt = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
            if kind == "op" and text in (".", "?.") and nxt is not None and nxt[0] in ("name", "num"):
                out.append("." + nxt[1])
                self.pos += 2
            elif kind == "op" and text in ("(", "["):
                out.append(self._group(text))
            else:
                break
        return "".join(out)

"""A small, safe expression language for schedules and prompt weights (DECISIONS S-8, S-9).

User text is parsed with :func:`ast.parse` and then walked here: only a whitelist of node types,
names and functions is accepted, and each accepted node becomes a closure over NumPy ufuncs. No user
text is ever passed to ``eval``, ``exec`` or ``compile``. All arithmetic is float64, so overflow
gives ``inf`` at once instead of a huge integer computation; a non-finite result is reported as a
:class:`~deforge.errors.ScheduleError`.

Example::

    expr = compile_expression("1 + 0.1*sin(2*pi*t/24)", names=SCHEDULE_NAMES)
    values = expr.evaluate(t=np.arange(100.0), max_frames=100, max_f=99, s=0)
"""

from __future__ import annotations

import ast
import functools
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from deforge.errors import ScheduleError

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "KEY_NAMES",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_OPERATORS",
    "SCHEDULE_NAMES",
    "Expression",
    "compile_expression",
    "evaluate_scalar",
]

#: Variables of a schedule value or a backtick prompt weight.
SCHEDULE_NAMES: frozenset[str] = frozenset({"t", "max_frames", "max_f", "s"})
#: Variables of a quoted frame key (S-7): everything but ``t``.
KEY_NAMES: frozenset[str] = frozenset({"max_frames", "max_f", "s"})

#: Longest accepted expression, in characters.
MAX_LENGTH = 10_000
#: Deepest accepted syntax tree (keeps compilation and evaluation far from the recursion limit).
MAX_DEPTH = 200
#: Most operator characters accepted; more is refused before parsing, since long operator runs
#: (``------1``) make Python's parser recurse thousands of levels before it gives up.
MAX_OPERATORS = 1_000
_OPERATOR_CHARS = "+-*/%<>=!&|~^"

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

Array = np.ndarray
Env = Mapping[str, Array]
Node = Callable[[Env], Array]


def _where(cond: Array, a: Array, b: Array) -> Array:
    return np.where(cond != 0, a, b)


def _clip(x: Array, lo: Array, hi: Array) -> Array:
    return np.minimum(np.maximum(x, lo), hi)


def _round(x: Array) -> Array:
    return np.round(x)  # half to even: round(2.5) == 2


#: Whitelisted functions: name -> (arity, implementation).
FUNCTIONS: dict[str, tuple[int, Callable[..., Array]]] = {
    "sin": (1, np.sin),
    "cos": (1, np.cos),
    "tan": (1, np.tan),
    "arcsin": (1, np.arcsin),
    "arccos": (1, np.arccos),
    "arctan": (1, np.arctan),
    "sinh": (1, np.sinh),
    "cosh": (1, np.cosh),
    "tanh": (1, np.tanh),
    "log": (1, np.log),
    "log10": (1, np.log10),
    "log1p": (1, np.log1p),
    "exp": (1, np.exp),
    "expm1": (1, np.expm1),
    "sqrt": (1, np.sqrt),
    "abs": (1, np.abs),
    "floor": (1, np.floor),
    "ceil": (1, np.ceil),
    "round": (1, _round),
    "arctan2": (2, np.arctan2),
    "fmod": (2, np.fmod),
    "min": (2, np.minimum),
    "max": (2, np.maximum),
    "where": (3, _where),
    "clip": (3, _clip),
}


def _as_float(x: Array) -> Array:
    return np.asarray(x, dtype=np.float64)


def _logical_and(a: Array, b: Array) -> Array:
    return _as_float((a != 0) & (b != 0))


def _logical_or(a: Array, b: Array) -> Array:
    return _as_float((a != 0) | (b != 0))


_BINARY_OPS: dict[type, Callable[[Array, Array], Array]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
    ast.Mod: np.mod,  # sign of the divisor, like Python's %
    ast.BitAnd: _logical_and,
    ast.BitOr: _logical_or,
}

_REJECTED_BINARY_OPS: dict[type, str] = {
    ast.FloorDiv: "'//' is not supported; use floor(a / b)",
    ast.BitXor: "'^' is not supported; use ** for powers",
    ast.LShift: "'<<' is not supported",
    ast.RShift: "'>>' is not supported",
    ast.MatMult: "'@' is not supported",
}

_COMPARISONS: dict[type, Callable[[Array, Array], Array]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}

_REJECTED_NODES: dict[type, str] = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.BoolOp: "'and'/'or' are not operators here; use & and |",
    ast.IfExp: "conditional expressions are not supported; use where(cond, a, b)",
    ast.Lambda: "lambdas are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.List: "lists are not allowed",
    ast.Starred: "starred arguments are not allowed",
}

# Characters that can occur in a valid expression; anything else is reported before parsing, which
# also keeps comments, backslash continuations, NUL bytes and non-ASCII text away from the parser.
_ALLOWED_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,()[]'\"+-*/%<>=!&|~^ \t\n\r\f\v"
)
_CHAR_REASONS: dict[str, str] = {"#": "comments are not allowed"}


@dataclass(frozen=True)
class Expression:
    """A compiled expression: call :meth:`evaluate` with a value for each variable it uses.

    ``text`` is the expression as given; ``variables`` are the names it actually reads.
    """

    text: str
    variables: frozenset[str]
    _fn: Node = field(repr=False, compare=False)
    _source: str = field(repr=False, compare=False)
    _column: int = field(repr=False, compare=False)
    _setting: str | None = field(repr=False, compare=False)

    def evaluate(self, **values: float | np.ndarray) -> np.ndarray:
        """The value for the given variables, broadcast over all of them (float64 array).

        Raises ScheduleError when any element is not finite, naming the first such ``t``.
        """
        env = self._environment(values)
        shape = np.broadcast_shapes(*(np.shape(v) for v in env.values())) if env else ()
        with np.errstate(all="ignore"):
            raw = self._fn(env)
        out = np.array(np.broadcast_to(raw, shape), dtype=np.float64)
        self._check_finite(out, env.get("t"))
        return out

    def evaluate_scalar(self, **values: float) -> float:
        """The value for scalar variables, as a Python float."""
        result = self.evaluate(**values)
        if result.size != 1:
            raise ValueError(f"evaluate_scalar needs scalar values, got shape {result.shape}")
        return float(result.reshape(-1)[0])

    def _environment(self, values: Mapping[str, float | np.ndarray]) -> dict[str, np.ndarray]:
        missing = self.variables.difference(values)
        if missing:
            raise TypeError(f"no value given for {', '.join(sorted(missing))} in {self.text!r}")
        return {name: _as_float(value) for name, value in values.items()}

    def _check_finite(self, out: np.ndarray, t: np.ndarray | None) -> None:
        finite = np.isfinite(out)
        if finite.all():
            return
        index = int(np.argmin(finite.reshape(-1)))
        bad = out.reshape(-1)[index]
        where = ""
        if t is not None:
            frames = np.broadcast_to(t, out.shape).reshape(-1)
            where = f" at frame {_format_number(frames[index])}"
        reason = f"the expression {self.text!r} gives {bad} (not a finite number){where}"
        raise ScheduleError(reason, self._source, self._column, self._setting)


def _format_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


class _Compiler:
    """Walks a parsed expression and builds closures, rejecting everything not whitelisted."""

    def __init__(self, names: frozenset[str], offset: int, source: str, setting: str | None):
        self.names = names
        self.offset = offset
        self.source = source
        self.setting = setting
        self.text = ""  # the one-line expression being compiled, set before build()
        self.used: set[str] = set()

    def fail(self, reason: str, col: int | None) -> ScheduleError:
        """An error at 0-based column ``col`` of the expression text."""
        column = None if col is None else self.offset + max(col, 0) + 1
        return ScheduleError(reason, self.source, column, self.setting)

    def build(self, node: ast.AST, depth: int) -> Node:
        """The closure for ``node``."""
        if depth > MAX_DEPTH:
            raise self.fail("the expression is nested too deeply", getattr(node, "col_offset", 0))
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, depth)
        if isinstance(node, ast.BinOp):
            return self._binary(node, depth)
        if isinstance(node, ast.Compare):
            return self._compare(node, depth)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        reason = _REJECTED_NODES.get(type(node), f"{type(node).__name__} is not allowed")
        raise self.fail(reason, getattr(node, "col_offset", 0))

    def _operator_column(self, node: ast.BinOp) -> int:
        """The operator's column: the first non-blank character after the left operand."""
        end = getattr(node.left, "end_col_offset", None)
        if end is None:
            return node.col_offset
        while end < len(self.text) and self.text[end] in " ()":
            end += 1
        return end

    def _constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "strings" if isinstance(value, (str, bytes)) else f"{type(value).__name__} values"
            raise self.fail(f"{kind} are not allowed", node.col_offset)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail("the number is too large (not a finite float)", node.col_offset)
        return _const_node(number)

    def _name(self, node: ast.Name) -> Node:
        name = node.id
        if name in self.names:
            self.used.add(name)
            return _variable_node(name)
        if name in CONSTANTS:
            return _const_node(CONSTANTS[name])
        if name in FUNCTIONS:
            raise self.fail(f"{name} is a function; call it as {name}(...)", node.col_offset)
        known = ", ".join(sorted(self.names | CONSTANTS.keys()))
        raise self.fail(f"unknown name {name!r} (known names: {known})", node.col_offset)

    def _unary(self, node: ast.UnaryOp, depth: int) -> Node:
        if isinstance(node.op, ast.Not):
            raise self.fail("'not' is not an operator here; use ~", node.col_offset)
        operand = self.build(node.operand, depth + 1)
        if isinstance(node.op, ast.USub):
            return lambda env: np.negative(operand(env))
        if isinstance(node.op, ast.Invert):
            return lambda env: _as_float(operand(env) == 0)
        return operand  # unary plus

    def _binary(self, node: ast.BinOp, depth: int) -> Node:
        op = _BINARY_OPS.get(type(node.op))
        if op is None:
            reason = _REJECTED_BINARY_OPS.get(type(node.op), "unsupported operator")
            raise self.fail(reason, self._operator_column(node))
        left = self.build(node.left, depth + 1)
        right = self.build(node.right, depth + 1)
        return lambda env: op(left(env), right(env))

    def _compare(self, node: ast.Compare, depth: int) -> Node:
        ops: list[Callable[[Array, Array], Array]] = []
        for op, right in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARISONS.get(type(op))
            if fn is None:
                raise self.fail("'is'/'in' are not operators here", right.col_offset)
            ops.append(fn)
        operands = [self.build(n, depth + 1) for n in [node.left, *node.comparators]]
        return _comparison_chain(ops, operands)

    def _call(self, node: ast.Call, depth: int) -> Node:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.fail("only the listed functions can be called", node.col_offset)
        if func.id not in FUNCTIONS:
            if func.id in self.names or func.id in CONSTANTS:
                raise self.fail(f"{func.id} is not a function", func.col_offset)
            raise self.fail(f"unknown function {func.id!r}", func.col_offset)
        if node.keywords:
            raise self.fail("keyword arguments are not allowed", node.keywords[0].col_offset)
        arity, impl = FUNCTIONS[func.id]
        if len(node.args) != arity:
            plural = "" if arity == 1 else "s"
            reason = f"{func.id} takes {arity} argument{plural} ({len(node.args)} given)"
            raise self.fail(reason, func.col_offset)
        args = [self.build(a, depth + 1) for a in node.args]
        return _call_node(impl, args)


def _const_node(value: float) -> Node:
    constant = np.float64(value)
    return lambda env: constant


def _variable_node(name: str) -> Node:
    return lambda env: env[name]


def _call_node(impl: Callable[..., Array], args: list[Node]) -> Node:
    if len(args) == 1:
        (a,) = args
        return lambda env: impl(a(env))
    return lambda env: impl(*(arg(env) for arg in args))


def _comparison_chain(ops: list[Callable[[Array, Array], Array]], operands: list[Node]) -> Node:
    """``a < b <= c`` as ``(a < b) & (b <= c)``, each operand evaluated once; 1.0 or 0.0."""

    def chain(env: Env) -> Array:
        values = [operand(env) for operand in operands]
        result = ops[0](values[0], values[1])
        for i in range(1, len(ops)):
            result = result & ops[i](values[i], values[i + 1])
        return _as_float(result)

    return chain


def _prepare(text: str, offset: int, fail: Callable[[str, int | None], ScheduleError]) -> tuple[str, int]:
    """The text with surrounding whitespace removed, on one line, and its new offset.

    Rejects over-long text, too many operators and characters that have no place in an expression.
    """
    if len(text) > MAX_LENGTH:
        raise fail(f"the expression is too long ({len(text)} characters, at most {MAX_LENGTH})", 0)
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    stripped = stripped.rstrip()
    if not stripped:
        raise fail("empty expression", 0)
    if not _ALLOWED_CHARS.issuperset(stripped):
        i, ch = next((i, ch) for i, ch in enumerate(stripped) if ch not in _ALLOWED_CHARS)
        reason = _CHAR_REASONS.get(ch, f"the character {ch!r} is not allowed")
        raise fail(reason, lead + i)
    operators = sum(stripped.count(c) for c in _OPERATOR_CHARS)
    if operators > MAX_OPERATORS:
        raise fail(f"the expression is too complex ({operators} operators, at most {MAX_OPERATORS})", lead)
    # Newlines and tabs become spaces so that the parser sees one line and columns stay exact.
    one_line = stripped.translate({ord(c): " " for c in "\t\n\r\f\v"})
    return one_line, offset + lead


def _parse(text: str, fail: Callable[[str, int | None], ScheduleError]) -> ast.expr:
    """The syntax tree of ``text`` (already checked by :func:`_prepare`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        col = (exc.offset - 1) if exc.offset else 0
        col = min(max(col, 0), len(text) - 1)
        message = (exc.msg or "invalid syntax").split("(")[0].strip() or "invalid syntax"
        if "integer string conversion" in (exc.msg or ""):
            message = "a number has too many digits"
        raise fail(f"invalid expression: {message}", col) from None
    except (RecursionError, MemoryError):
        raise fail("the expression is nested too deeply", 0) from None
    except (ValueError, OverflowError) as exc:
        raise fail(f"invalid expression: {exc}", 0) from None


def compile_expression(
    text: str,
    *,
    names: frozenset[str] = SCHEDULE_NAMES,
    offset: int = 0,
    setting: str | None = None,
    source: str | None = None,
) -> Expression:
    """Compile ``text`` into an :class:`Expression` over the variables ``names``.

    ``offset`` is the 0-based position of ``text`` inside ``source`` (the text quoted in error
    messages, ``text`` itself by default), so that a reported column points into ``source``.
    Raises ScheduleError for anything outside the language of DECISIONS S-8.
    """
    return _compile_cached(text, frozenset(names), offset, setting, text if source is None else source)


@functools.lru_cache(maxsize=2048)
def _compile_cached(
    text: str, names: frozenset[str], offset: int, setting: str | None, source: str
) -> Expression:
    compiler = _Compiler(names, offset, source, setting)
    one_line, start = _prepare(text, offset, compiler.fail)
    compiler.offset = start
    compiler.text = one_line
    tree = _parse(one_line, compiler.fail)
    try:
        fn = compiler.build(tree, 0)
    except RecursionError:
        raise compiler.fail("the expression is nested too deeply", 0) from None
    return Expression(
        text=text.strip(),
        variables=frozenset(compiler.used),
        _fn=fn,
        _source=source,
        _column=start + 1,
        _setting=setting,
    )


def evaluate_scalar(
    text: str,
    values: Mapping[str, float],
    *,
    setting: str | None = None,
    offset: int = 0,
    source: str | None = None,
) -> float:
    """Compile ``text`` with the variables named in ``values`` and evaluate it to one float.

    For example a backtick prompt weight:
    ``evaluate_scalar("cos(6.28*t/10)", {"t": 3, "max_frames": 100, "max_f": 99, "s": 7})``.
    """
    expression = compile_expression(
        text, names=frozenset(values), offset=offset, setting=setting, source=source
    )
    return expression.evaluate_scalar(**values)

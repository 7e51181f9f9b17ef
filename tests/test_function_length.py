"""No function in ``src/semparts_reid`` is too long to read (issue 22, item 4).

Every function and method is parsed with :mod:`ast`; its *lines of code* are the lines
from its ``def`` to its last line, less its docstring, blank lines and comment-only
lines. Two limits apply:

- **80 lines of code** is the hard limit: a longer function fails, whatever it says.
- **60 lines of code** is the soft limit: a longer function must say why in its
  docstring. The convention is a sentence that starts ``Long because`` (case as
  written, anywhere in the docstring), for example::

      def evaluate_cmc_map(...):
          \"\"\"CMC and mAP of a query set against a gallery.

          Long because the chunked ranking loop keeps its running sums in locals;
          splitting it would pass seven accumulators back and forth.
          \"\"\"

A nested function counts inside its parent and is measured on its own as well. Run
this file directly (``python tests/test_function_length.py``) to print the longest
functions.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "semparts_reid"
HARD_LIMIT = 80
SOFT_LIMIT = 60
REASON_MARKER = "Long because"


@dataclass(frozen=True)
class FunctionLength:
    """One function's location, code-line count and docstring."""

    where: str
    code_lines: int
    docstring: str


def _code_lines_of(source: str) -> set[int]:
    """Line numbers (1-based) that hold a token other than a comment or a newline."""
    lines: set[int] = set()
    skip = {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENCODING,
        tokenize.ENDMARKER,
    }
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in skip:
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
    """Line numbers of the function's docstring, or an empty set."""
    if not node.body:
        return set()
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        end = first.end_lineno if first.end_lineno is not None else first.lineno
        return set(range(first.lineno, end + 1))
    return set()


def measure_file(path: Path) -> list[FunctionLength]:
    """Every function of one source file with its lines of code."""
    source = path.read_text(encoding="utf-8")
    code = _code_lines_of(source)
    tree = ast.parse(source, filename=str(path))
    rel = path.relative_to(SRC.parent).as_posix()
    found: list[FunctionLength] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                first = min([d.lineno for d in child.decorator_list] + [child.lineno])
                end = child.end_lineno if child.end_lineno is not None else child.lineno
                span = set(range(first, end + 1)) - _docstring_lines(child)
                found.append(
                    FunctionLength(
                        where=f"{rel}::{name}",
                        code_lines=len(span & code),
                        docstring=ast.get_docstring(child) or "",
                    )
                )
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def measure_all() -> list[FunctionLength]:
    """Every function under ``src/semparts_reid``, longest first."""
    out: list[FunctionLength] = []
    for path in sorted(SRC.rglob("*.py")):
        out.extend(measure_file(path))
    return sorted(out, key=lambda f: (-f.code_lines, f.where))


def test_the_counter_skips_docstrings_blank_lines_and_comments() -> None:
    source = (
        "def f(x):\n"
        '    """Doc.\n'
        "\n"
        '    More doc."""\n'
        "    # a comment\n"
        "\n"
        "    y = (x +\n"
        "         1)  # trailing comment\n"
        "    return y\n"
    )
    code = _code_lines_of(source)
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef)
    span = set(range(node.lineno, (node.end_lineno or 0) + 1)) - _docstring_lines(node)
    assert sorted(span & code) == [1, 7, 8, 9]


def test_no_function_is_over_the_hard_limit() -> None:
    over = [f for f in measure_all() if f.code_lines > HARD_LIMIT]
    assert not over, (
        f"functions over {HARD_LIMIT} lines of code (split them into helpers):\n"
        + "\n".join(f"  {f.code_lines:4d}  {f.where}" for f in over)
    )


def test_long_functions_say_why_they_are_long() -> None:
    unexplained = [
        f
        for f in measure_all()
        if SOFT_LIMIT < f.code_lines <= HARD_LIMIT and REASON_MARKER not in f.docstring
    ]
    assert not unexplained, (
        f"functions over {SOFT_LIMIT} lines of code whose docstring has no "
        f"'{REASON_MARKER} ...' sentence (shorten them or say why):\n"
        + "\n".join(f"  {f.code_lines:4d}  {f.where}" for f in unexplained)
    )


if __name__ == "__main__":
    for f in measure_all()[:40]:
        flag = " (reason given)" if REASON_MARKER in f.docstring else ""
        print(f"{f.code_lines:4d}  {f.where}{flag}")

"""The suite's own rule, checked: every test's docstring says the behaviour it holds.

A test without one, or with one that only restates the function's name ("Test foo."), fails
this check with the file, line and name of each offender, so the rule cannot be forgotten.
Test files, classes and functions are found with pytest's own patterns from the config.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_ROOT = Path(__file__).resolve().parents[1]

TestFunction = ast.FunctionDef | ast.AsyncFunctionDef


def _matches(name: str, patterns: list[str]) -> bool:
    """pytest's rule for python_classes and python_functions: a prefix, or a glob if it has one."""
    return any(
        fnmatch.fnmatch(name, pattern)
        if any(c in pattern for c in "*?[")
        else name.startswith(pattern)
        for pattern in patterns
    )


def _test_functions(
    body: list[ast.stmt], classes: list[str], functions: list[str], prefix: str = ""
) -> Iterator[tuple[str, TestFunction]]:
    for node in body:
        if isinstance(node, ast.ClassDef) and _matches(node.name, classes):
            yield from _test_functions(node.body, classes, functions, f"{prefix}{node.name}.")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _matches(
            node.name, functions
        ):
            yield f"{prefix}{node.name}", node


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def problem_of(name: str, docstring: str | None) -> str | None:
    """Why a test's docstring does not state a behaviour, or None when it does."""
    if not docstring or not docstring.strip():
        return "no docstring"
    words = _words(docstring.split("\n\n")[0])
    name_words = _words(name.rsplit(".", 1)[-1].removeprefix("test"))
    if words[:1] in (["test"], ["tests"]) or words == name_words:
        return "the docstring only restates the test's name"
    return None


def docstring_problems(
    root: Path, files: list[str], classes: list[str], functions: list[str]
) -> list[str]:
    """``path:line: name: problem`` for each test under ``root`` whose docstring is missing or
    says nothing but its name."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if not any(fnmatch.fnmatch(path.name, pattern) for pattern in files):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in _test_functions(tree.body, classes, functions):
            problem = problem_of(name, ast.get_docstring(node))
            if problem is not None:
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {name}: {problem}")
    return found


def _patterns(config: pytest.Config) -> tuple[list[str], list[str], list[str]]:
    return (
        list(config.getini("python_files")),
        list(config.getini("python_classes")),
        list(config.getini("python_functions")),
    )


def test_every_test_in_the_suite_states_the_behaviour_it_holds(
    pytestconfig: pytest.Config,
) -> None:
    """Every test function and method under tests/ has a docstring that says more than its
    name; the failure lists each one that does not."""
    problems = docstring_problems(TESTS_ROOT, *_patterns(pytestconfig))

    assert problems == [], "tests without a behaviour in their docstring:\n" + "\n".join(problems)


def test_the_check_names_tests_without_a_docstring_or_with_only_their_name(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """The check can fail: a missing docstring, a "Test foo." one, one that repeats the name
    and one in a test class are each named with file and line; a real sentence passes."""
    suite = tmp_path / "tests"
    suite.mkdir()
    (suite / "test_sample.py").write_text(
        "def test_silent():\n"
        "    assert True\n"
        "\n"
        "def test_foo():\n"
        '    """Test foo."""\n'
        "\n"
        "async def test_a_copy_is_kept():\n"
        '    """A copy is kept."""\n'
        "\n"
        "def test_replaced_file_is_kept():\n"
        '    """A file replaced under the same name is kept beside the old one."""\n'
        "\n"
        "class TestGroup:\n"
        "    def test_method(self):\n"
        "        pass\n"
        "\n"
        "def helper():\n"
        "    pass\n",
        encoding="utf-8",
    )
    (suite / "helpers.py").write_text("def test_not_collected():\n    pass\n", encoding="utf-8")

    problems = docstring_problems(suite, *_patterns(pytestconfig))

    assert problems == [
        "tests/test_sample.py:1: test_silent: no docstring",
        "tests/test_sample.py:4: test_foo: the docstring only restates the test's name",
        "tests/test_sample.py:7: test_a_copy_is_kept: the docstring only restates the test's name",
        "tests/test_sample.py:14: TestGroup.test_method: no docstring",
    ]

"""CONTRIBUTING.md#layering: the library never imports the CLI, terminal or pipeline layers."""

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "vois_cli"
EDGE = LIBRARY / "cli"
FORBIDDEN = {"typer", "rich", "dvc", "stages", "vois_cli.cli"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_library_modules_do_not_import_cli_terminal_or_pipeline_code():
    offenders = {
        str(path.relative_to(LIBRARY.parent)): sorted(n for n in _imports(path) if _forbidden(n))
        for path in LIBRARY.rglob("*.py")
        if EDGE not in path.parents and path.name != "__main__.py"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import rich.progress\nfrom typer import Option\nimport torch\n")
    assert sorted(n for n in _imports(bad) if _forbidden(n)) == ["rich.progress", "typer"]

"""The layout holds: the library never imports the app, no module reaches into another's private names,
the engine never probes a model, files stay small outside models/, and the README links everything."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted((ROOT / "spotting_core").rglob("*.py"))
APP = [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py"))]
MAX_LINES = 320  # "about 300": a file that grows past it is doing two jobs


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, [a.name for a in node.names]))
    return out


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_library_never_imports_the_app(path):
    for module, _ in _imports(path):
        top = module.split(".")[0]
        assert top not in ("pages", "app", "streamlit", "starlette"), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", LIBRARY + APP, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_names_across_modules(path):
    for module, names in _imports(path):
        if module.split(".")[0] in ("spotting_core", "pages"):
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{path.name} imports {private} from {module}"


def test_the_engine_never_probes_a_model():
    for path in sorted((ROOT / "spotting_core" / "engine").glob("*.py")):
        text = path.read_text()
        assert not re.search(r"\b(getattr|hasattr)\(", text), f"{path.name}: reads an undeclared attribute"


@pytest.mark.parametrize("path", [p for p in LIBRARY + APP if "models" not in p.parts],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_files_outside_models_stay_small(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines"


def test_readme_links_every_module_and_page():
    readme = (ROOT / "README.md").read_text()
    linked = {m.split("#")[0] for m in re.findall(r"\]\(([^)\s]+)\)", readme)}
    missing = [str(p.relative_to(ROOT)) for p in LIBRARY + APP
               if p.name != "__init__.py" or p.parent.name in ("models", "cli")
               if str(p.relative_to(ROOT)) not in linked]
    assert not missing, f"README does not link: {', '.join(missing)}"

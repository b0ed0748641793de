"""The docs (issue 25 item 5): README.md is an entry page, docs/ builds with MkDocs in strict mode (a broken link or
anchor, or a page left out of the navigation, is an error), README's links resolve, and no source file names a
``.md`` document the repository does not have (DESIGN.md, RELIABILITY.md, ... lived outside it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import markdown
import pytest

pytestmark = pytest.mark.L0

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TWO_COMMANDS = (
    "bash scripts/run.sh     # set-up + model build (cached), start tritonserver + the service, answer a demo chat",
    "bash scripts/test.sh    # set-up + model build (cached), then every test tier (what CI runs: .ci/run)",
)

#: Where source (and the docs) live; benchmarks/results and tests/fixtures are outputs and data.
SOURCE_DIRS = ("server", "clients", "model_repository", "benchmarks", "tests", "deploy", "scripts", "proto", ".ci", "docs")
SKIP_DIRS = {"__pycache__", "results", "fixtures", "node_modules", ".pytest_cache"}
SOURCE_SUFFIXES = {".py", ".sh", ".yaml", ".yml", ".toml", ".txt", ".tpl", ".proto", ".pbtxt", ".cfg", ".ini", ".md"}
ROOT_FILES = ("pyproject.toml", "mkdocs.yml", "README.md")
#: A ``.md`` name in a source file, not inside a URL (``https://.../model_management.md`` names the web).
MD_NAME = re.compile(r"(?<![\w./:*{}-])((?:\.{0,2}/)?[\w./-]*\w\.md)\b")


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent, capture_output=True, text=True, timeout=120,
    )


def test_docs_build_strict_without_a_warning(tmp_path: Path) -> None:
    proc = _mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "WARNING" not in out, out
    pages = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    built = sorted(p.stem for p in (tmp_path / "site").glob("*.html") if p.stem not in ("404", "search"))
    assert built == pages, (built, pages)


def _anchors(page: Path) -> set[str]:
    html = markdown.markdown(page.read_text(encoding="utf-8"), extensions=["toc", "tables", "fenced_code"])
    return set(re.findall(r'\bid="([^"]+)"', html))


def _links(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links inside code blocks are not links
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_readme_is_an_entry_page_whose_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for command in TWO_COMMANDS:
        assert command in text.splitlines()
    links = _links(text)
    assert any(link.startswith("docs/") for link in links)
    broken = []
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (ROOT / path) if path else README
        if not target.exists():
            broken.append(f"{link}: no {path}")
        elif anchor and anchor not in _anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {path}")
    assert not broken, broken


def _source_files() -> list[Path]:
    files = [ROOT / name for name in ROOT_FILES if (ROOT / name).exists()]
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT).parts
            if path.is_file() and path != Path(__file__).resolve() and not SKIP_DIRS.intersection(rel) and (
                    path.suffix in SOURCE_SUFFIXES or path.name == "Dockerfile" or path.name.endswith(".Dockerfile")
                    or top == ".ci"):
                files.append(path)
    return files


def _missing(name: str, source: Path) -> bool:
    """Whether ``name`` (a ``.md`` name found in ``source``) is a document the repository does not have: one outside
    the repository (``/work/shared/X.md``, ``../shared/X.md``), an upper-case name (``DESIGN.md``) that is nowhere
    it points, or a path into a folder of the repository with no such file (``docs/no-such-page.md``). A bare
    lower-case name (``eval.md``) or a path into a folder the repository has not got (``out/name.md``) is a report
    a command writes, not a document."""
    candidates = [(base / name).resolve() for base in (ROOT, source.parent)]
    inside = [c for c in candidates if c.is_relative_to(ROOT)]
    if not inside:
        return True
    if any(c.is_file() for c in inside):
        return False
    if re.fullmatch(r"[A-Z][A-Z0-9_-]*\.md", Path(name).name):
        return True
    return "/" in name and any(c.parent.is_dir() for c in inside)


def _missing_documents(files: list[Path]) -> list[str]:
    missing = []
    for path in files:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            missing += [f"{shown}:{lineno}: {name}" for name in MD_NAME.findall(line) if _missing(name, path)]
    return missing


def test_no_source_file_names_a_document_the_repository_does_not_have() -> None:
    files = _source_files()
    assert len(files) > 100  # the walk found the source tree
    missing = _missing_documents(files)
    assert not missing, "source files name documents the repository does not have:\n" + "\n".join(missing)


@pytest.mark.parametrize("line, found", [
    ("# the thresholds (DESIGN.md) are kept", ["DESIGN.md"]),
    ("see shared/ENVIRONMENT.md and /work/shared/RELIABILITY.md", ["shared/ENVIRONMENT.md", "/work/shared/RELIABILITY.md"]),
    ("pinned as in ../shared/deploy.md", ["../shared/deploy.md"]),
    ("see docs/no-such-page.md", ["docs/no-such-page.md"]),
    ("see docs/reliability.md, deploy/README.md, README.md and benchmarks/results/service_load.md", []),
    ("writes eval.md and out/name.md; https://example.com/docs/model_management.md", []),
    ("reports in `rerank_20rps/eval/*/eval.md` and `drift/triggers/week_{B,C}.md`", []),
])
def test_the_document_check_sees_what_it_should(tmp_path: Path, line: str, found: list[str]) -> None:
    source = tmp_path / "example.py"
    source.write_text(line + "\n")
    assert [m.split(": ", 1)[1] for m in _missing_documents([source])] == found


#: A source comment citing a README section by name: ``README "Answers"``, ``the README's "Cluster"``.
README_SECTION = re.compile(r"README(?:\.md)?(?:'s)?,? \"([^\"]+)\"")


def test_sections_of_the_readme_that_source_files_cite_exist() -> None:
    headings = [h.lower() for h in re.findall(r"^#+ (.+)$", README.read_text(encoding="utf-8"), flags=re.M)]
    stale = []
    for path in _source_files():
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            stale += [f"{path.relative_to(ROOT)}:{lineno}: README \"{s}\"" for s in README_SECTION.findall(line)
                      if not any(h.startswith(s.lower()) for h in headings)]
    assert not stale, "README sections that moved to docs/ (cite the docs page instead):\n" + "\n".join(stale)

"""Every reference in the repository leads to a file in it, and every anchor to a heading."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = (".ci", ".github", "benchmarks", "docs", "stages", "tests", "vois_cli")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".txt", ""}
# citations of design notes that never were part of the repository
OUTSIDE = re.compile(r"\bDESIGN\b|\bSTYLE rule|DESIGN\.md|STYLE\.md|shared/|\.\./shared")
MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
ANCHORED = re.compile(r"([\w./-]+\.md)#([\w-]+)")


def _sources() -> list[Path]:
    """The repository's text files: top-level ones and those of its source folders."""
    files = [p for p in REPO.iterdir() if p.is_file() and p.suffix in SUFFIXES - {""}]
    for folder in FOLDERS:
        files += [
            p
            for p in (REPO / folder).rglob("*")
            if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts
        ]
    return sorted(files)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(markdown: Path) -> set[str]:
    anchors, fenced = set(), False
    for line in markdown.read_text().splitlines():
        fenced ^= line.startswith("```")
        heading = re.match(r"#{1,6} (.+)", line)
        if heading and not fenced:
            anchors.add(_slug(heading.group(1)))
    return anchors


def _resolve(source: Path, target: str) -> Path | None:
    """A path as written in `source`: relative to its folder (links) or to the repository root
    (paths cited in code); None when neither exists."""
    for base in (source.parent, REPO):
        path = (base / target).resolve()
        if path.exists() and REPO in (path, *path.parents):
            return path
    return None


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


def test_no_reference_cites_design_notes_outside_the_repository():
    me = Path(__file__).resolve()
    hits = [
        f"{p.relative_to(REPO)}:{i}: {line.strip()}"
        for p in _sources()
        if p.resolve() != me
        for i, line in enumerate(_text(p).splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert hits == []


def test_markdown_links_lead_to_files_in_the_repository():
    broken = [
        f"{p.relative_to(REPO)}: {target}"
        for p in _sources()
        if p.suffix == ".md"
        for target in MD_LINK.findall(_text(p))
        if not re.match(r"[a-z]+:|#", target) and _resolve(p, target.split("#")[0]) is None
    ]
    assert broken == []


def test_every_anchor_names_a_heading_of_its_file():
    broken = []
    for p in _sources():
        text = _text(p)
        cited = ANCHORED.findall(text)
        if p.suffix == ".md":  # links within the page: (#anchor)
            cited += [(p.name, a) for a in re.findall(r"\]\(#([\w-]+)\)", text)]
        for target, anchor in cited:
            path = p if target == p.name else _resolve(p, target)
            if path is None or anchor not in _anchors(path):
                broken.append(f"{p.relative_to(REPO)}: {target}#{anchor}")
    assert broken == []


def test_design_anchors_follow_github_slugs():
    assert _slug("Deviations from the paper") == "deviations-from-the-paper"
    assert _slug("`vois infer`: one video") == "vois-infer-one-video"
    design = _anchors(REPO / "docs" / "design.md")
    assert {"data-layout", "annotated-frames", "model", "presets", "library-traps"} <= design

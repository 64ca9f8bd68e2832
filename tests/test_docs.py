"""The README and docs/: every relative link resolves, the README stays short, and its layout table
names every folder and `lab/` package that exists."""

import re
from pathlib import Path

import pytest

from lab.settings import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
# What runs leave behind (.gitignore), not part of the layout.
UNTRACKED = {"reports", "__pycache__", "node_modules", "observability_lab.egg-info"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


def relative_links(page: Path) -> list[str]:
    return [link for link in LINK.findall(page.read_text()) if not re.match(r"[a-z]+://|mailto:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    links = relative_links(page)
    for link in links:
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {link} names no file"
        if anchor:
            assert anchor in anchors(path), f"{page.name}: {link}: no heading #{anchor} in {path.name}"


def test_the_readme_links_every_doc_and_stays_short():
    assert len(README.read_text().splitlines()) <= 200
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in relative_links(README)}
    assert set(PAGES[1:]) <= linked, "a page of docs/ the README does not link"


def test_the_slugs_are_githubs():
    assert slug("Without Docker: `make native`") == "without-docker-make-native"
    assert slug("Faults and alerts") == "faults-and-alerts"


def layout_rows() -> set[str]:
    text = README.read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    return {match.rstrip("/") for match in re.findall(r"^\| `([^`]+)`", text, re.M)}


def test_the_layout_table_names_every_folder_and_lab_package():
    folders = {
        path.name
        for path in ROOT.iterdir()
        if path.is_dir() and not path.name.startswith(".") and path.name not in UNTRACKED
    }
    packages = {f"lab/{path.parent.name}" for path in (ROOT / "lab").glob("*/__init__.py")}
    assert folders | packages <= layout_rows(), (folders | packages) - layout_rows()
    assert layout_rows() <= folders | packages | {"lab"}, "a row names no folder"

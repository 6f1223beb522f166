"""The README is a front page and docs/ holds the rest (issue 21, item 6).

README.md stays small and starts with the two set-up commands; its results tables (and those of
docs/results.md and docs/hparams.md) are what scripts/readme_results.py writes from the archives and
the code; no relative link points at nothing; every section of the README as it was before the move
(commit 8f99f34) has a home in docs/, listed in docs/README.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
OLD_README_COMMIT = "8f99f34"
COMMANDS = ["bash scripts/reproduce.sh", "bash scripts/test.sh"]


def test_readme_is_a_front_page_that_starts_with_the_two_commands():
    size = len(README.read_bytes())
    assert size <= 12_000, f"README.md is {size} bytes; the front page must stay within 12,000"
    text = README.read_text()
    # the title and one paragraph, then the commands: they are the first code block
    first_block = re.search(r"```[a-z]*\n(.*?)```", text, re.S)
    assert first_block, "README.md has no code block"
    lines = [ln.split("#")[0].strip() for ln in first_block.group(1).splitlines() if ln.strip()]
    assert lines == COMMANDS, f"the README's first code block must be the two set-up commands, got {lines}"
    before = text[:first_block.start()]
    assert before.startswith("# ") and before.count("\n\n") <= 2, \
        "only the title and one paragraph may come before the set-up commands"


def test_results_blocks_are_what_the_script_writes_from_the_archives():
    r = subprocess.run([sys.executable, str(REPO / "scripts/readme_results.py"), "--check"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, (r.stdout + r.stderr
                               + "\nrun `python scripts/readme_results.py` and commit README.md and docs/")


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The anchors a Markdown page offers: its headings as GitHub slugs them, and explicit <a id>s."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    heads = re.findall(r"^#+ (.*)$", text, re.M)
    return ({re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}
            | set(re.findall(r'<a id="([^"]+)"', text)))


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_existing_files(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    missing, bad_anchor = [], []
    for m in LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # a URL
        path, _, anchor = unquote(target).partition("#")
        dest = page.parent / path if path else page
        if not dest.exists():
            missing.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad_anchor.append(target)
    assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"
    assert not bad_anchor, f"{page.relative_to(REPO)} links to headings that do not exist: {bad_anchor}"


def test_the_docs_pages_exist_and_say_what_they_are_for():
    for page in sorted(DOCS.glob("*.md")):
        lines = page.read_text().splitlines()
        assert lines and lines[0].startswith("# "), f"{page.name} must start with a title"
        body = [ln for ln in lines[1:] if ln.strip()]
        assert body and not body[0].startswith(("#", "|", "```", "<!--")), \
            f"{page.name}: the first lines after the title must say what a reader gets from the page"


def _old_headings() -> list[str]:
    try:
        old = subprocess.run(["git", "show", f"{OLD_README_COMMIT}:README.md"], capture_output=True,
                             text=True, cwd=REPO, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        pytest.skip(f"git history with commit {OLD_README_COMMIT} is not available (a shallow clone?)")
    return [ln[3:].strip() for ln in old.splitlines() if ln.startswith("## ")]


def test_every_old_readme_section_has_a_home_in_docs():
    headings = _old_headings()
    assert len(headings) >= 10, headings
    index = (DOCS / "README.md").read_text()
    table = index[index.index("## Where each old README section went"):]
    rows = {ln.split("|")[1].strip(): ln for ln in table.splitlines() if ln.startswith("| ")}
    missing = [h for h in headings if h not in rows]
    assert not missing, f"docs/README.md's table does not say where these old sections went: {missing}"
    for h in headings:
        targets = re.findall(r"\]\(([^)#]+)", rows[h])
        assert targets, f"the row of {h!r} names no page"
        for t in targets:
            assert (DOCS / t).exists(), f"the row of {h!r} points to a missing page {t}"

"""Build the course site: every notebook as a web page, with the outputs stored in it (nothing is re-run).

    python site/build.py [OUTPUT_DIR]        (default: build/site; ./course.sh site runs this)

The sources are staged in a folder of their own (the numbered notebooks, ``docs/``, the front page and
the README it quotes), laid out as in the repository so that every relative link keeps working, and
Sphinx with myst-nb turns them into HTML. Any warning (a link to a missing page or section, a picture
that cannot be written) fails the build.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from sphinx.cmd.build import build_main

SITE_DIR = Path(__file__).resolve().parent
REPOSITORY_ROOT = SITE_DIR.parent


def stage_sources(staging_dir: Path) -> None:
    """Copy what the site is made of into ``staging_dir``, in the repository's layout."""
    if staging_dir.exists():
        shutil.rmtree(staging_dir)
    (staging_dir / "notebooks").mkdir(parents=True)
    (staging_dir / "docs").mkdir()
    for notebook in sorted((REPOSITORY_ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        shutil.copy2(notebook, staging_dir / "notebooks" / notebook.name)
    for page in sorted((REPOSITORY_ROOT / "docs").glob("*.md")):
        shutil.copy2(page, staging_dir / "docs" / page.name)
    shutil.copy2(SITE_DIR / "index.md", staging_dir / "index.md")
    shutil.copy2(REPOSITORY_ROOT / "README.md", staging_dir / "README.md")


def build_site(output_dir: Path) -> int:
    """Build the site into ``output_dir`` (emptied first); Sphinx's exit status."""
    staging_dir = output_dir.parent / f"{output_dir.name}-sources"
    stage_sources(staging_dir)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    doctrees_dir = output_dir.parent / f"{output_dir.name}-doctrees"
    options = ["-b", "html", "-q", "-W", "--keep-going", "-c", str(SITE_DIR), "-d", str(doctrees_dir)]
    return build_main([*options, str(staging_dir), str(output_dir)])


def main(argv: list[str]) -> int:
    output_dir = Path(argv[0]) if argv else REPOSITORY_ROOT / "build" / "site"
    started = time.monotonic()
    status = build_site(output_dir.resolve())
    if status == 0:
        pages = [page for page in output_dir.rglob("*.html") if "_static" not in page.parts]
        size_mb = sum(path.stat().st_size for path in output_dir.rglob("*") if path.is_file()) / 1e6
        seconds = time.monotonic() - started
        print(f"site: {len(pages)} pages, {size_mb:.1f} MB in {output_dir}, built in {seconds:.1f} s")
        print(f"open {output_dir / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Render three pages of the documentation site to PNG with headless Chromium, for a person to look at.

    python scripts/docs_screenshots.py                    # PNGs in docs/_build/screenshots/

The landing page, the derivations page from its section 3 on (display math) and one gallery
page. The site is
built first (``python -m sphinx``, warnings as errors) into ``docs/_build/screenshots/html``
with MathJax taken from Debian's ``libjs-mathjax`` instead of the CDN the published site
uses, so that the equations render without a network; the pages are served on 127.0.0.1
while Chromium takes the pictures. Needs the Debian packages ``chromium`` and
``libjs-mathjax`` (``apt-get install -y chromium libjs-mathjax``) and the ``docs`` extra.
Not part of CI.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATHJAX_DIR = Path("/usr/share/javascript/mathjax")  # Debian's libjs-mathjax (MathJax 2)
MATHJAX_CONFIG = "TeX-AMS_SVG"  # SVG output: no web fonts to fetch
# (page, section id or "", PNG name, height): the top of each page, or the part from one section on.
PAGES = (
    ("index.html", "", "landing.png", 1400),
    ("derivations.html", "the-weight-gradient-l-w-thesis-eq-2-3", "derivations.png", 1400),
    ("generated/gallery/plot_2_kde_dt_dr.html", "", "gallery.png", 1800),
)
WIDTH = 1400
# Headless Chromium draws a blank picture of a scrolled page, so a section further down is found by
# a script added to the site copy (its offset, once MathJax is done, as an attribute of <html>), then
# drawn in a window tall enough to hold it, and the picture cropped to it.
OFFSET_SCRIPT = """<script>
window.addEventListener("load", function () {
  var at = new URLSearchParams(location.search).get("at");
  var mark = function () {
    var el = at && document.getElementById(at);
    if (el) { document.documentElement.dataset.at = el.getBoundingClientRect().top + window.scrollY; }
  };
  if (window.MathJax && MathJax.Hub) { MathJax.Hub.Queue(mark); } else { mark(); }
});
</script>
"""
# Chromium runs the page's scripts (MathJax typesetting) for this much virtual time before the picture.
VIRTUAL_TIME_MS = 20000


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("docs_screenshots: error: no chromium on PATH (apt-get install -y chromium)")


def build(out: Path) -> None:
    """The site, with MathJax served from the same host as the pages (see serve)."""
    if not (MATHJAX_DIR / "MathJax.js").is_file():
        raise SystemExit(f"docs_screenshots: error: no {MATHJAX_DIR}/MathJax.js (apt-get install -y libjs-mathjax)")
    subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                    "-D", f"mathjax_path=/_mathjax/MathJax.js?config={MATHJAX_CONFIG}",
                    # MyST marks its pages for MathJax 3's configuration, which MathJax 2 would read as
                    # "ignore": leave the pages unmarked, MathJax 2 then typesets every \( \) and \[ \]
                    "-D", "myst_update_mathjax=0",
                    str(ROOT / "docs"), str(out)], check=True)


def serve(site: Path):
    """An HTTP server on 127.0.0.1 (a free port) with the site under /site/ and MathJax under /_mathjax/."""
    root = Path(tempfile.mkdtemp())
    (root / "site").symlink_to(site.resolve())
    (root / "_mathjax").symlink_to(MATHJAX_DIR)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def run_chromium(url: str, height: int, *args) -> str:
    done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--window-size={WIDTH},{height}", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                           *args, url], check=True, capture_output=True, text=True, timeout=300)
    return done.stdout


def offset_of(url: str, section: str, height: int) -> int:
    """Where the section starts on the page, in pixels, once MathJax has typeset it."""
    dom = run_chromium(f"{url}?at={section}", height, "--dump-dom")
    found = re.search(r'<html[^>]*data-at="([0-9.]+)"', dom)
    if not found:
        raise SystemExit(f"docs_screenshots: error: no section {section!r} on {url}")
    return int(float(found.group(1)))


def shoot(url: str, section: str, png: Path, height: int) -> None:
    top = max(offset_of(url, section, height) - 20, 0) if section else 0
    run_chromium(url, top + height, f"--screenshot={png}")
    if top:
        from PIL import Image  # Pillow: a dependency of Matplotlib

        with Image.open(png) as image:
            image.crop((0, top, WIDTH, top + height)).save(png)


def add_offset_script(site: Path) -> None:
    for page, section, _, _ in PAGES:
        path = site / page
        if section and OFFSET_SCRIPT not in path.read_text(encoding="utf-8"):
            path.write_text(path.read_text(encoding="utf-8").replace("</body>", OFFSET_SCRIPT + "</body>"),
                            encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "_build" / "screenshots",
                        help="folder for the site copy (html/) and the PNGs (default: docs/_build/screenshots)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    build(args.out / "html")
    add_offset_script(args.out / "html")
    server = serve(args.out / "html")
    try:
        for page, section, name, height in PAGES:
            url = f"http://127.0.0.1:{server.server_address[1]}/site/{page}"
            shoot(url, section, args.out / name, height)
            print(f"{args.out / name}: {page}{'#' + section if section else ''}")
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Open pages of a built book in headless Chromium, offline, and report what the reader
would see.

The built HTML is served on 127.0.0.1 (an ephemeral port). Chromium loads one extra
page, ``/__golden_check__.html``, which opens each book page in a same-origin iframe,
waits for the page and for MathJax to finish, and writes a JSON report into its own DOM;
``--dump-dom`` hands that DOM back. Every host name other than 127.0.0.1 is mapped to
"not found", so a page that needed a CDN shows up as a failure rather than quietly
loading from the internet.

Per page the report has:

* ``math``: elements Sphinx marked as math (``.math``), ``untypeset``: those without an
  ``mjx-container`` inside, ``mjx``: ``mjx-container`` elements, ``merrors``: MathJax
  errors, ``mathjax``: the MathJax version that ran, or null when the page loads no
  MathJax;
* ``images``: every ``<img>`` with ``ok`` = loaded with ``naturalWidth > 0``;
* ``external``: resources the page requested from anywhere but the local server.

The report also lists the server's ``missing`` files (404s other than favicon.ico).

Usage: ``python tools/browser_check.py HTML_DIR [PAGE ...]`` (pages relative to
HTML_DIR, default ``index.html``); prints the JSON report; exit status 1 if any page has
a problem.
"""

from __future__ import annotations

import functools
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHECK_PATH = "/__golden_check__.html"
RESULT_ID = "golden-result"

CHECK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>golden browser check</title></head>
<body><pre id="%(result_id)s">pending</pre>
<script>
const PAGES = %(pages)s;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function load(url) {
  return new Promise((resolve, reject) => {
    const f = document.createElement("iframe");
    f.style.width = "1280px"; f.style.height = "1000px";
    f.onload = () => resolve(f);
    f.onerror = () => reject(new Error("iframe failed to load " + url));
    f.src = url;
    document.body.appendChild(f);
  });
}
async function check(url) {
  const f = await load(url);
  const w = f.contentWindow, d = f.contentDocument;
  let mathjax = null;
  if (d.querySelector('script[src*="mathjax"]')) {
    const started = () => w.MathJax && w.MathJax.startup && w.MathJax.startup.promise;
    for (let i = 0; i < 400 && !started(); i++) {
      await sleep(50);
    }
    if (!started()) {
      throw new Error("the page loads MathJax but MathJax never started");
    }
    await w.MathJax.startup.promise;
    mathjax = w.MathJax.version || "unknown";
  }
  const imgs = Array.from(d.images);
  for (let i = 0; i < 200 && imgs.some((im) => !im.complete); i++) await sleep(50);
  const math = Array.from(d.querySelectorAll(".math"));
  const origin = w.location.origin;
  const report = {
    title: d.title,
    mathjax: mathjax,
    math: math.length,
    untypeset: math.filter((e) => !e.querySelector("mjx-container")).length,
    mjx: d.querySelectorAll("mjx-container").length,
    merrors: d.querySelectorAll("mjx-merror").length,
    images: imgs.map((im) => ({src: im.getAttribute("src"),
                               ok: im.complete && im.naturalWidth > 0,
                               width: im.naturalWidth})),
    external: w.performance.getEntriesByType("resource").map((e) => e.name)
                .filter((n) => !n.startsWith(origin) && !n.startsWith("data:")),
  };
  f.remove();
  return report;
}
(async () => {
  const out = {};
  for (const p of PAGES) {
    try { out[p] = await check(p); } catch (e) { out[p] = {error: String(e)}; }
  }
  document.getElementById("%(result_id)s").textContent = JSON.stringify(out);
})();
</script></body></html>
"""


class _Handler(SimpleHTTPRequestHandler):
    """Serves the book; answers CHECK_PATH with the check page; records 404s."""

    check_page: bytes = b""
    missing: list[str]

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?")[0] == CHECK_PATH:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(self.check_page)))
            self.end_headers()
            self.wfile.write(self.check_page)
            return
        super().do_GET()

    def send_error(self, code, message=None, explain=None):  # noqa: D102
        if code == 404 and not self.path.endswith("favicon.ico"):
            self.missing.append(self.path)
        super().send_error(code, message, explain)

    def log_message(self, format, *args):  # noqa: A002 - keep the server quiet
        pass


def find_chromium() -> str | None:
    """The Chromium binary: $CHROMIUM, else chromium / chromium-browser on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit and Path(explicit).exists():
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


def check_pages(
    html_dir: Path,
    pages: list[str],
    chromium: str | None = None,
    budget_ms: int = 60000,
    timeout_s: float = 240,
) -> dict:
    """Load ``pages`` (paths relative to ``html_dir``) in headless Chromium; return the
    report.

    Raises RuntimeError when Chromium is missing or returns no report.
    """
    chromium = chromium or find_chromium()
    if not chromium:
        raise RuntimeError(
            "Chromium not found: install it (`make test` does: apt-get install "
            "chromium) "
            "or set CHROMIUM=/path/to/chromium"
        )
    missing: list[str] = []
    handler = type(
        "Handler",
        (_Handler,),
        {
            "check_page": (
                CHECK_PAGE
                % {
                    "pages": json.dumps(["/" + p.lstrip("/") for p in pages]),
                    "result_id": RESULT_ID,
                }
            ).encode(),
            "missing": missing,
        },
    )
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(html_dir))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}{CHECK_PATH}"
    try:
        with tempfile.TemporaryDirectory(prefix="golden-chromium-") as profile:
            cmd = [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                # offline: only the local server resolves
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                url,
            ]
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s
            )
    finally:
        server.shutdown()
        server.server_close()
    dom = proc.stdout
    start = dom.find(f'<pre id="{RESULT_ID}">')
    end = dom.find("</pre>", start)
    if start < 0 or end < 0:
        raise RuntimeError(
            f"Chromium returned no report (exit {proc.returncode}).\n"
            f"stderr tail:\n{proc.stderr[-3000:]}\nstdout head:\n{dom[:2000]}"
        )
    text = html.unescape(dom[start + len(f'<pre id="{RESULT_ID}">') : end])
    if text == "pending":
        raise RuntimeError(
            f"the check did not finish within the virtual-time budget ({budget_ms} ms)"
        )
    by_url = json.loads(text)
    return {
        "pages": {p: by_url["/" + p.lstrip("/")] for p in pages},
        "missing": sorted(set(missing)),
    }


def problems(report: dict) -> list[str]:
    """Human-readable problems in a report; empty when every page reads well."""
    found = [f"server: missing file {path}" for path in report["missing"]]
    for page, r in report["pages"].items():
        if "error" in r:
            found.append(f"{page}: {r['error']}")
            continue
        if r["untypeset"]:
            found.append(
                f"{page}: {r['untypeset']} of {r['math']} math elements not typeset by "
                "MathJax"
            )
        if r["math"] and not r["mjx"]:
            found.append(f"{page}: has math but no mjx-container")
        if r["merrors"]:
            found.append(f"{page}: {r['merrors']} MathJax errors (mjx-merror)")
        found += [
            f"{page}: image did not load: {im['src']}"
            for im in r["images"]
            if not im["ok"]
        ]
        found += [
            f"{page}: requested an external resource: {name}" for name in r["external"]
        ]
    return found


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 2
    report = check_pages(Path(argv[0]), argv[1:] or ["index.html"])
    print(json.dumps(report, indent=1))
    bad = problems(report)
    for line in bad:
        print("PROBLEM:", line, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

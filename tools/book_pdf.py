"""Print the whole book to one PDF, offline: single-page HTML, headless Chromium.

A build of the book (``jupyter-book build``) leaves the executed notebooks in
``<build>/jupyter_execute``. This tool gathers them, with the pages that are not
notebooks, into a staging folder and builds them once more, without executing anything,
with Sphinx's ``singlehtml`` builder: one page holding every chapter, with the equation
numbers of the web pages. It serves that page on 127.0.0.1 (every other host
unreachable), opens it in headless Chromium through the DevTools protocol on a pipe,
waits until MathJax has typeset every formula and every image has loaded, refuses to
print if either failed, and prints it with ``Page.printToPDF``. jupyter-book's own
``pdfhtml`` builder would download a browser, which an offline machine cannot.

Usage: ``python tools/book_pdf.py BUILD_DIR OUT.pdf`` where BUILD_DIR holds ``html`` and
``jupyter_execute`` (``_build`` after ``make book``). Next to the PDF it writes
``OUT.pdf.json``: what the page held (math, typeset, images) when it was printed.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_check import find_chromium  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*m")
A4_INCHES = (8.27, 11.69)
MARGIN_INCHES = 0.5

READY = """(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const started = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
  for (let i = 0; i < 1200 && !started(); i++) await sleep(100);
  if (!started()) return {error: "MathJax never started"};
  await MathJax.startup.promise;
  const images = Array.from(document.images);
  images.forEach((im) => { im.loading = "eager"; });
  await Promise.all(images.map((im) => im.complete ? null :
    new Promise((r) => { im.onload = im.onerror = r; })));
  await document.fonts.ready;
  const math = Array.from(document.querySelectorAll(".math"));
  return {
    mathjax: MathJax.version,
    math: math.length,
    untypeset: math.filter((e) => !e.querySelector("mjx-container")).length,
    merrors: document.querySelectorAll("mjx-merror").length,
    images: images.length,
    broken: images.filter((im) => !(im.naturalWidth > 0)).map((im) => im.src),
    equation_numbers: Array.from(document.querySelectorAll("span.eqno"))
      .map((e) => e.firstChild.textContent.trim()),  // without the "#" link
  };
})()"""


FIT = """(async () => {
  const style = document.createElement("style");
  style.textContent = `pre {
      white-space: pre-wrap !important; overflow-wrap: anywhere; }
    div.math, mjx-container, .pst-scrollable-table-container {
      overflow: visible !important; }`;
  document.head.appendChild(style);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  let fitted = 0;
  const fit = (element, room) => {
    if (element.scrollWidth > room + 1) {
      element.style.zoom = (room / element.scrollWidth).toFixed(4);
      fitted++;
    }
  };
  for (const div of document.querySelectorAll("div.math")) {
    const formula = div.querySelector("mjx-container");
    const number = div.querySelector(".eqno");
    if (formula) fit(formula, div.clientWidth - (number ? number.offsetWidth + 8 : 0));
  }
  for (const table of document.querySelectorAll("article table")) {
    fit(table, table.parentElement.clientWidth);
  }
  return fitted;
})()"""
"""Wide formulas and tables are scaled down to the printed width, long code lines wrap:
nothing is cut off at the page's edge (on the screen they scroll instead)."""


class PdfError(RuntimeError):
    """The PDF could not be made; the message says why."""


# ------------------------------------------------------------------- the single page


def toc_documents(toc: dict) -> list[str]:
    """Every document of a _toc.yml, root first."""
    found = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                found.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return found


def stage(build_dir: Path, folder: Path) -> Path:
    """A book source in ``folder``: each executed notebook in place of its chapter.

    Pages that are not notebooks (no executed copy) are copied as they are.
    """
    executed = build_dir / "jupyter_execute"
    if not executed.is_dir():
        raise PdfError(f"{executed} is missing: build the book first (make book)")
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    for doc in toc_documents(toc):
        notebook = executed / f"{doc}.ipynb"
        source = notebook if notebook.is_file() else REPO_ROOT / f"{doc}.md"
        target = folder / doc
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target.with_suffix(source.suffix))
    shutil.copy2(REPO_ROOT / "_toc.yml", folder / "_toc.yml")
    shutil.copy2(REPO_ROOT / "references.bib", folder / "references.bib")
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"  # the notebooks hold their outputs
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    extra = sphinx["html_extra_path"]  # MathJax, copied from the repository's _vendor
    sphinx["html_extra_path"] = [str(REPO_ROOT / path) for path in extra]
    (folder / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def build_single_page(folder: Path) -> Path:
    """Build the staged book with the singlehtml builder; the page, at the build's root.

    Sphinx writes the single page under the root document's name (chapters/intro.html)
    but links its assets as if it stood at the root, so a copy is put there.
    """
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    if not jupyter_book.exists():
        jupyter_book = Path(shutil.which("jupyter-book") or "jupyter-book")
    cmd = [
        str(jupyter_book),
        "build",
        str(folder),
        "--builder",
        "singlehtml",
        "--path-output",
        str(folder),
    ]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    out = folder / "_build" / "singlehtml"
    root = yaml.safe_load((folder / "_toc.yml").read_text())["root"]
    written = out / f"{root}.html"
    if proc.returncode != 0 or not written.is_file():
        log = ANSI.sub("", proc.stdout + proc.stderr)
        raise PdfError(
            f"the single-page build failed (exit {proc.returncode}):\n{log[-4000:]}"
        )
    page = out / "book.html"
    shutil.copy2(written, page)
    return page


# ------------------------------------------------------------------- Chromium


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - keep the server quiet
        pass


class DevTools:
    """Headless Chromium driven by the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, chromium: str, profile: str):
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            # offline: only the local server resolves
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "about:blank",
        ]
        # the shell hands the two pipe ends to Chromium as the fds 3 and 4 it expects
        wiring = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}'
        self.process = subprocess.Popen(
            ["bash", "-c", wiring, chromium, *args],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []

    def _receive(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                stderr = self.process.stderr.read().decode(errors="replace")
                raise PdfError(f"Chromium closed the DevTools pipe:\n{stderr[-3000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        os.write(self._write, json.dumps(request).encode() + b"\0")
        while True:
            message = self._receive()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise PdfError(f"{method}: {message['error']}")
                return message["result"]
            if "method" in message:
                self._events.append(message)

    def wait_for(self, event: str, session: str) -> dict:
        """The next event of this name from the session (one may have come already)."""
        while True:
            for message in self._events:
                if message["method"] == event and message.get("sessionId") == session:
                    self._events.remove(message)
                    return message.get("params", {})
            message = self._receive()
            if "method" in message:
                self._events.append(message)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (PdfError, OSError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._read)
        os.close(self._write)


def print_page(html_dir: Path, page: str, out: Path, timeout_s: float = 600) -> dict:
    """Serve ``html_dir``, open ``page`` in Chromium, check it, print it to ``out``."""
    chromium = find_chromium()
    if not chromium:
        raise PdfError("Chromium not found: `make setup` installs it, or set CHROMIUM")
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{page}"
    try:
        with tempfile.TemporaryDirectory(prefix="golden-pdf-") as profile:
            browser = DevTools(chromium, profile)
            try:
                target = browser.call("Target.createTarget", url="about:blank")
                target = target["targetId"]
                session = browser.call(
                    "Target.attachToTarget", targetId=target, flatten=True
                )["sessionId"]
                browser.call("Page.enable", session)
                browser.call("Page.navigate", session, url=url)
                browser.wait_for("Page.loadEventFired", session)
                ready = browser.call(
                    "Runtime.evaluate",
                    session,
                    expression=READY,
                    awaitPromise=True,
                    returnByValue=True,
                    timeout=timeout_s * 1000,
                )
                report = ready["result"].get("value") or {"error": str(ready)}
                problems = pdf_problems(report)
                if problems:
                    raise PdfError("not printed: " + "; ".join(problems))
                width, height = A4_INCHES
                # lay the page out as it will be printed, then fit what is too wide
                browser.call("Emulation.setEmulatedMedia", session, media="print")
                browser.call(
                    "Emulation.setDeviceMetricsOverride",
                    session,
                    width=round((width - 2 * MARGIN_INCHES) * 96),
                    height=1000,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                fitted = browser.call(
                    "Runtime.evaluate",
                    session,
                    expression=FIT,
                    awaitPromise=True,
                    returnByValue=True,
                )
                report["scaled_to_fit"] = fitted["result"].get("value")
                printed = browser.call(
                    "Page.printToPDF",
                    session,
                    printBackground=True,
                    paperWidth=width,
                    paperHeight=height,
                    marginTop=MARGIN_INCHES,
                    marginBottom=MARGIN_INCHES,
                    marginLeft=MARGIN_INCHES,
                    marginRight=MARGIN_INCHES,
                    displayHeaderFooter=False,
                )
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(printed["data"]))
    return report


def pdf_problems(report: dict) -> list[str]:
    """Why a page must not be printed; empty when MathJax and every image are done."""
    if "error" in report:
        return [report["error"]]
    found = []
    if not report["math"]:
        found.append("the page holds no math")
    if report["untypeset"]:
        found.append(f"{report['untypeset']} of {report['math']} formulas not typeset")
    if report["merrors"]:
        found.append(f"{report['merrors']} MathJax errors")
    found += [f"image did not load: {src}" for src in report["broken"]]
    return found


def make_pdf(build_dir: Path, out: Path) -> dict:
    """The whole book as one PDF at ``out``; the report, also written beside it."""
    with tempfile.TemporaryDirectory(prefix="golden-pdf-stage-") as folder:
        page = build_single_page(stage(build_dir, Path(folder)))
        report = print_page(page.parent, page.name, out)
    out.with_name(out.name + ".json").write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 2
    start = time.monotonic()
    try:
        report = make_pdf(Path(argv[0]), Path(argv[1]))
    except PdfError as error:
        print(f"book_pdf: {error}", file=sys.stderr)
        return 1
    print(
        f"{argv[1]}: {report['math']} formulas typeset by MathJax "
        f"{report['mathjax']}, "
        f"{report['images']} images, {len(report['equation_numbers'])} numbered "
        f"equations, {time.monotonic() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`make lab` serves the chapters as notebooks and runs them in its own kernels.

The path a reader takes, proved end to end: the test starts `make lab` headless on
127.0.0.1 (on a port the system gives it, read back from the server's own info file; a
random token; Jupyter's user folders in a temporary folder),
fetches a chapter through the REST contents API, saves it back through that API, runs
its code cells in a kernel of that server over the kernel websocket, and shuts the
server down through the REST API. Deselect with ``pytest -m "not lab"``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import jupytext
import pytest
import websocket

REPO_ROOT = Path(__file__).resolve().parent.parent
# One of the fastest chapters (about 6 s); it needs neither data nor stored results.
CHAPTER = "chapters/golden_values.md"
NOTEBOOK = f"/api/contents/{CHAPTER}?type=notebook&content=1"
VIEWERS = "/lab/api/settings/@jupyterlab/docmanager-extension:plugin"
START_TIMEOUT_S = 180
CELL_TIMEOUT_S = 300
ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.lab


class Lab:
    """A `make lab` server started by the test, spoken to through its REST API."""

    def __init__(self, tmp: Path) -> None:
        # Port 0: the server takes a port the system gives it, so no port found free
        # here can be taken by another process before the server binds it.
        self.port: int | None = None
        self.runtime = tmp / "runtime"
        self.token = secrets.token_hex(16)
        self.log = tmp / "lab.log"
        env = dict(
            os.environ,
            JUPYTER_PORT="0",
            JUPYTER_PORT_RETRIES="0",
            JUPYTER_TOKEN=self.token,
        )
        # The user's own Jupyter settings and kernels must not change what is tested.
        for var, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
        ]:
            env[var] = str(tmp / sub)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["make", "--no-print-directory", "lab", "LAB_ARGS=--no-browser"],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url(path),
            data=data,
            method=method,
            headers={
                "Authorization": f"token {self.token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read()
        return json.loads(text) if text else {}

    def fail(self, why: str) -> None:
        tail = self.log.read_text(errors="replace")[-4000:]
        pytest.fail(f"{why}; end of the server's log:\n{tail}")

    def served_port(self) -> int | None:
        """The port in the info file the server writes once it listens, if written."""
        for info in self.runtime.glob("jpserver-*.json"):
            try:
                return int(json.loads(info.read_text())["port"])
            except (OSError, ValueError, KeyError):  # half-written
                pass
        return None

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"make lab exited with status {self.proc.returncode}")
            self.port = self.port or self.served_port()
            try:
                if self.port:
                    self.request("GET", "/api/status")
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.5)
        self.fail(f"make lab did not answer within {START_TIMEOUT_S} s")

    def stop(self) -> int | None:
        """Shut down through the REST API; kill the process group only if that fails."""
        if self.proc.poll() is None:
            try:
                self.request("POST", "/api/shutdown")
                return self.proc.wait(timeout=60)
            except (urllib.error.URLError, ConnectionError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            return None
        return self.proc.returncode


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        server.wait_until_up()
        yield server
    finally:
        returncode = server.stop()
    if returncode != 0:
        server.fail(f"make lab did not stop cleanly (status {returncode})")


def test_the_server_is_on_loopback_and_wants_its_token(lab: Lab) -> None:
    assert re.search(rf"http://127\.0\.0\.1:{lab.port}/lab", lab.log.read_text())
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(lab.url("/api/contents/chapters"), timeout=30)
    assert denied.value.code == 403


def test_markdown_files_open_as_notebooks_in_jupyterlab(lab: Lab) -> None:
    viewers = lab.request("GET", VIEWERS)["schema"]["properties"]["defaultViewers"]
    assert viewers["default"].get("markdown") == "Jupytext Notebook"


def test_a_chapter_comes_back_as_the_notebook_of_its_cells(lab: Lab) -> None:
    model = lab.request("GET", NOTEBOOK)
    assert (model["type"], model["format"]) == ("notebook", "json")
    served = model["content"]
    expected = jupytext.read(REPO_ROOT / CHAPTER)
    assert [(c["cell_type"], c["source"]) for c in served["cells"]] == [
        (c.cell_type, c.source) for c in expected.cells
    ]
    assert sum(c["cell_type"] == "code" for c in served["cells"]) >= 3
    assert served["metadata"]["kernelspec"]["name"] == "python3"
    text = served["metadata"]["jupytext"]["text_representation"]
    assert text["format_name"] == "myst"


def test_saving_a_notebook_writes_myst_text_and_no_ipynb(lab: Lab) -> None:
    """Saved into the git-ignored _build: the chapters themselves are never touched."""
    folder = REPO_ROOT / "_build" / f"lab-test-{lab.port}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        target = (folder / "saved.md").relative_to(REPO_ROOT).as_posix()
        lab.request(
            "PUT",
            f"/api/contents/{target}",
            {
                "type": "notebook",
                "format": "json",
                "content": lab.request("GET", NOTEBOOK)["content"],
            },
        )
        assert sorted(p.name for p in folder.iterdir()) == ["saved.md"]
        saved = (folder / "saved.md").read_text()
        assert "format_name: myst" in saved and "```{code-cell} ipython3" in saved
        assert [c.source for c in jupytext.reads(saved, fmt="md:myst").cells] == [
            c.source for c in jupytext.read(REPO_ROOT / CHAPTER).cells
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_every_chapter_saved_from_the_server_is_byte_for_byte_the_same(
    lab: Lab,
) -> None:
    """Opening a chapter and saving it unchanged, as JupyterLab does, changes no byte:
    the committed MyST text is the form jupytext writes ([tool.jupytext] in
    pyproject.toml keeps versions out of the header). Saved into the git-ignored
    _build, next to the chapters' own configuration."""
    folder = REPO_ROOT / "_build" / f"lab-roundtrip-{lab.port}"
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    try:
        for chapter in sorted((REPO_ROOT / "chapters").glob("*.md")):
            served = lab.request(
                "GET", f"/api/contents/chapters/{chapter.name}?type=notebook&content=1"
            )
            target = (folder / chapter.name).relative_to(REPO_ROOT).as_posix()
            lab.request(
                "PUT",
                f"/api/contents/{target}",
                {"type": "notebook", "format": "json", "content": served["content"]},
            )
            if (folder / chapter.name).read_bytes() != chapter.read_bytes():
                changed.append(chapter.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert changed == []


def execute(
    ws: websocket.WebSocket, session: str, code: str, expressions: dict | None = None
) -> tuple[dict, list[dict]]:
    """Send one execute_request; return its reply and the iopub messages it caused."""
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "session": session,
                    "username": "test",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": True,
                    "user_expressions": expressions or {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    iopub, reply, idle = [], None, False
    while reply is None or not idle:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["channel"] == "shell" and msg["msg_type"] == "execute_reply":
            reply = msg["content"]
        elif msg["channel"] == "iopub":
            iopub.append(msg)
            idle = idle or (
                msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            )
    return reply, iopub


def test_the_chapter_runs_in_a_kernel_of_the_server(lab: Lab) -> None:
    session = lab.request(
        "POST",
        "/api/sessions",
        {
            "path": CHAPTER,
            "name": Path(CHAPTER).name,
            "type": "notebook",
            "kernel": {"name": "python3"},
        },
    )
    kernel, client = session["kernel"]["id"], uuid.uuid4().hex
    ws = websocket.create_connection(
        lab.url(f"/api/kernels/{kernel}/channels?session_id={client}", "ws"),
        header=[f"Authorization: token {lab.token}"],
        timeout=CELL_TIMEOUT_S,
    )
    try:
        cells = lab.request("GET", NOTEBOOK)["content"]["cells"]
        code = [c["source"] for c in cells if c["cell_type"] == "code"]
        shown = 0
        for number, source in enumerate(code, 1):
            reply, iopub = execute(ws, client, source)
            errors = [m["content"] for m in iopub if m["msg_type"] == "error"]
            traceback = "\n".join((errors or [reply])[0].get("traceback", []))
            assert reply["status"] == "ok" and not errors, (
                f"code cell {number} of {CHAPTER} failed:\n{ANSI.sub('', traceback)}"
            )
            kinds = [m["msg_type"] for m in iopub]
            shown += sum(k in {"execute_result", "display_data"} for k in kinds)
        assert shown >= len(code) // 2, "the chapter's cells showed (almost) nothing"
        reply, _ = execute(
            ws,
            client,
            "import os",
            {"cwd": "os.getcwd()", "quick": "os.environ.get('GOLDEN_QUICK')"},
        )
        values = reply["user_expressions"]
        found = {k: v["data"]["text/plain"] for k, v in values.items()}
        # The chapters run from chapters/, in the mode the server was started in.
        assert found["cwd"] == repr(str(REPO_ROOT / "chapters"))
        assert found["quick"] == repr(os.environ["GOLDEN_QUICK"])
    finally:
        ws.close()
        lab.request("DELETE", f"/api/sessions/{session['id']}")

"""Fault injection on the cluster side of a sweep: each fault ends in one line on
stderr, exit status 2 (130 for Ctrl-C), no traceback, nothing written and nothing lost.

Scheduler addresses, peers that are not Dask schedulers, clusters without usable workers
and runs that kill their workers run ``golden.cli.main`` in this process; the peers are
servers on 127.0.0.1 at ports the OS chose, and a Dask scheduler tells its address
through its scheduler file.
A killed scheduler, Ctrl-C and a killed resource tracker run ``python -m golden``, and
each signal is sent only after the child said it is where the fault belongs (a line on
its stdout, a task on the scheduler, a process present), never after a sleep: no
outcome depends on timing or load. Every wait has a generous deadline, a safety limit
only.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import pytest
from dask.distributed import Client, Variable, fire_and_forget

import golden.data
import golden.experiments as ex
from factories import TINY_DATA
from golden import cluster, interrupt
from golden.store import Store
from golden.train import TrainConfig, train
from test_cli import exit_status, refuse_data
from test_faults import assert_fault, files_under
from test_runner import written_address

REPO_ROOT = Path(__file__).resolve().parent.parent
QUICK = ex.PROTOCOLS["quick"]
GRID = ["sweep", "grid", "--protocol", "quick", "--lrs", "0.05", "--momenta", "0.5"]
DEADLINE_S = 300  # a safety limit for any wait below, far above what each takes


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Results in tmp_path, no scheduler from the environment, and MNIST never loaded
    in this process."""
    monkeypatch.setenv("GOLDEN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("GOLDEN_SCHEDULER", "")
    monkeypatch.setattr(golden.data, "splits", refuse_data)


def environment(tmp_path: Path) -> dict:
    """The environment of a child: this checkout, the results in tmp_path."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "GOLDEN_RESULTS": str(tmp_path / "results"),
        "GOLDEN_SCHEDULER": "",
    }


def fault_in_process(capsys, tmp_path, argv, *words) -> None:
    """``golden.cli.main`` on ``argv`` ends in one line naming ``words``, and writes no
    result."""
    status = exit_status(argv)
    assert_fault(status, capsys.readouterr().err, *words)
    assert files_under(tmp_path / "results") == {}


# ---------------------------------------------------------- addresses, before anything

BAD_ADDRESSES = {
    "no port": (["--scheduler", "foo"], {}, ["--scheduler 'foo'", "no port"]),
    "no host": (["--scheduler", "tcp://"], {}, ["'tcp://'", "no host"]),
    "variable": ([], {"GOLDEN_SCHEDULER": "foo"}, ["GOLDEN_SCHEDULER 'foo'"]),
    "http": (
        ["--scheduler", "http://127.0.0.1:8080"],
        {},
        ["'http://'", "not tcp:// or tls://"],
    ),
    "port range": (["--scheduler", "127.0.0.1:65536"], {}, ["bad port '65536'"]),
    "empty host": (["--scheduler", "tcp://:8786"], {}, ["no host"]),
}


@pytest.mark.parametrize(
    "args, env, words", BAD_ADDRESSES.values(), ids=BAD_ADDRESSES.keys()
)
def test_a_malformed_scheduler_address_is_one_line(
    capsys, monkeypatch, tmp_path, args, env, words
):
    """Checked before the protocol, the store or the cluster; the line names the
    accepted forms."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fault_in_process(capsys, tmp_path, [*GRID, *args], *words, "give tcp://HOST:PORT")


def test_tls_without_dask_tls_settings_is_one_line(capsys, tmp_path):
    """tls:// works with Dask's TLS settings (a CA file and a client certificate);
    without them it is refused, saying which settings to give."""
    unset = {
        "distributed.comm.tls.ca-file": None,
        "distributed.comm.tls.client.cert": None,
    }
    with dask.config.set(unset):
        fault_in_process(
            capsys,
            tmp_path,
            [*GRID, "--scheduler", "tls://127.0.0.1:1"],
            "asks for TLS",
            "DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
            "use tcp://",
        )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl for a cert")
def test_tls_with_dask_tls_settings_reaches_the_scheduler(
    capsys, monkeypatch, tmp_path
):
    """A scheduler that speaks TLS only, a self-signed certificate as the CA and the
    client's certificate: the address is accepted and the scheduler answers through
    TLS; it has no worker, which is the one line. A server of another protocol fails
    the TLS handshake, in one line."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=golden-test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    tls = ["--tls-ca-file", str(cert), "--tls-cert", str(cert), "--tls-key", str(key)]
    address, process = start_scheduler(tmp_path, "--protocol", "tls", *tls)
    settings = {
        "distributed.comm.tls.ca-file": str(cert),
        "distributed.comm.tls.client.cert": str(cert),
        "distributed.comm.tls.client.key": str(key),
    }
    monkeypatch.setattr(cluster, "WORKERS_S", 1.0)  # no worker ever comes: any bound
    try:
        assert address.startswith("tls://")
        with dask.config.set(settings), peer_of_another_protocol() as port:
            fault_in_process(
                capsys,
                tmp_path,
                [*GRID, "--scheduler", address],
                f"the Dask scheduler at {address} has no worker",
            )
            fault_in_process(
                capsys,
                tmp_path,
                [*GRID, "--scheduler", f"tls://127.0.0.1:{port}"],
                f"the TLS handshake with tls://127.0.0.1:{port} failed",
            )
    finally:
        process.kill()
        process.wait()


# ------------------------------------------------------ peers that are not schedulers


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test's stderr is the sweep's
        pass


@contextlib.contextmanager
def peer_of_another_protocol():
    """A server that answers whatever it is sent with a line of its own protocol, as
    an SSH server would; yields its port."""
    with socket.socket() as peer:
        peer.bind(("127.0.0.1", 0))
        peer.listen(8)

        def serve() -> None:
            while True:
                try:
                    connection, _ = peer.accept()
                except OSError:  # shut down
                    return
                with connection, contextlib.suppress(OSError):  # the client's reset
                    if connection.recv(4096):
                        connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                        connection.recv(4096)  # until the client closes

        threading.Thread(target=serve, daemon=True).start()
        try:
            yield peer.getsockname()[1]
        finally:
            peer.shutdown(socket.SHUT_RDWR)


@pytest.fixture(params=["http server", "silent peer", "another protocol"])
def not_a_scheduler(request):
    """An HTTP server; a socket that accepts connections (the kernel does, from its
    backlog) and never answers; a server of another protocol. Yields a tcp:// address
    of it."""
    if request.param == "http server":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        server.server_close()
    elif request.param == "silent peer":
        with socket.socket() as peer:
            peer.bind(("127.0.0.1", 0))
            peer.listen(8)
            yield f"tcp://127.0.0.1:{peer.getsockname()[1]}"
    else:
        with peer_of_another_protocol() as port:
            yield f"tcp://127.0.0.1:{port}"


def test_an_address_that_is_not_a_dask_scheduler_is_one_line(
    capsys, tmp_path, not_a_scheduler
):
    """Dask's own handshake would wait for ever; golden's waits Dask's connect timeout
    (2 s here: neither peer ever answers as Dask does, so any bound gives this line)."""
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        fault_in_process(
            capsys,
            tmp_path,
            [*GRID, "--scheduler", not_a_scheduler],
            f"{not_a_scheduler} accepts connections, but is not a Dask scheduler",
        )


# ---------------------------------------------------------------- a Dask scheduler


def start_scheduler(tmp_path: Path, *options: str) -> tuple[str, subprocess.Popen]:
    """A ``dask scheduler`` (with ``options``) on 127.0.0.1 at a port of its own
    choosing, and its address, from its scheduler file."""
    file = tmp_path / "scheduler.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1"]
        + ["--port", "0", "--dashboard-address", "127.0.0.1:0"]
        + ["--scheduler-file", str(file), *options],
        env=environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return written_address(file), process
    except BaseException:  # pytest's failure too
        process.kill()
        process.wait()
        raise


@pytest.fixture
def scheduler(tmp_path):
    """A ``dask scheduler`` on 127.0.0.1 at a port of its choosing; yields (address,
    process)."""
    address, process = start_scheduler(tmp_path)
    yield address, process
    process.kill()
    process.wait()


@pytest.fixture
def start_worker(tmp_path):
    """Starts ``dask worker`` processes (one thread, no nanny) with this checkout on
    their path, golden hidden from them if asked; kills them at the end."""
    workers = []

    def start(address: str, without_golden: bool = False) -> subprocess.Popen:
        hide = "sys.modules['golden'] = None; " if without_golden else ""
        argv = [address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1"]
        code = (
            f"import sys; {hide}sys.argv[1:] = {[*argv, '--no-dashboard']!r}; "
            "from distributed.cli.dask_worker import main; main()"
        )
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", code],
                env=environment(tmp_path),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return workers[-1]

    yield start
    for worker in workers:
        worker.kill()
        worker.wait()


def test_a_cluster_without_usable_workers_is_one_line(
    capsys, monkeypatch, tmp_path, scheduler, start_worker
):
    """No worker: one line once the wait for one ends. A worker that cannot import
    golden: one line naming it, from a probe that leaves the worker alive (a run sent
    to it would kill it, and the sweep would wait for ever)."""
    address, _ = scheduler
    with monkeypatch.context() as patched:
        patched.setattr(cluster, "WORKERS_S", 1.0)  # no worker ever comes: any bound
        fault_in_process(
            capsys,
            tmp_path,
            [*GRID, "--scheduler", address],
            f"the Dask scheduler at {address} has no worker",
            f"dask worker {address}",
        )
    worker = start_worker(address, without_golden=True)
    with Client(address, timeout=DEADLINE_S) as client:
        client.wait_for_workers(1, timeout=DEADLINE_S)
    fault_in_process(
        capsys,
        tmp_path,
        [*GRID, "--scheduler", address],
        f"1 of 1 workers at {address} cannot import golden",
        "ModuleNotFoundError",
    )
    assert worker.poll() is None


def stored_record(tmp_path: Path) -> tuple[list[TrainConfig], Path]:
    """The grid's configurations, the first one's record stored (trained on tiny
    data: the store only checks that it is the record of that configuration)."""
    pairs = ex.grid_pairs([0.05], [0.5])
    configs = ex.Experiment(
        "custom", lambda p, store: ex.as_variants(pairs), lambda p: p.epochs
    ).configs(QUICK)
    store = Store(tmp_path / "results")
    folder = store.folder("custom", QUICK)
    store.prepare(folder, configs)
    history = train(configs[0], TINY_DATA, progress=False).as_dict()
    return configs, store.write(folder, history, QUICK, "custom")


def test_a_scheduler_killed_during_a_sweep_is_one_line_and_loses_nothing(
    tmp_path, scheduler, start_worker
):
    """The worker's one thread is held by a task of the test's own, so the sweep's run
    waits on the scheduler until the scheduler is killed: the stored record is kept
    byte for byte, and the rerun would run the other run alone."""
    address, process = scheduler
    configs, record = stored_record(tmp_path)
    kept = record.read_bytes()
    start_worker(address)
    sweep = None
    try:
        with Client(address, timeout=DEADLINE_S) as client:
            client.wait_for_workers(1, timeout=DEADLINE_S)
            fire_and_forget(
                client.submit(
                    lambda: Variable("held").set(True) or time.sleep(3600), pure=False
                )
            )
            Variable("held", client=client).get(timeout=DEADLINE_S)
            sweep = subprocess.Popen(
                [sys.executable, "-m", "golden", *GRID, "--scheduler", address],
                env=environment(tmp_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + DEADLINE_S
            while not client.run_on_scheduler(
                lambda dask_scheduler: any(
                    str(key).startswith("custom-") for key in dask_scheduler.tasks
                )
            ):
                assert time.monotonic() < deadline and sweep.poll() is None
                time.sleep(0.05)
        process.kill()
        out, err = sweep.communicate(timeout=DEADLINE_S)
    finally:
        if sweep is not None:
            sweep.kill()
    assert_fault(
        sweep.returncode,
        err,
        f"lost the connection to the Dask scheduler at {address}",
        f"1 of 2 runs stored in {record.parent}, and a rerun resumes",
    )
    assert list(record.parent.iterdir()) == [record] and record.read_bytes() == kept
    assert Store(tmp_path / "results").pending(configs, record.parent) == configs[1:]


def test_a_run_that_kills_its_workers_is_one_line(capsys, tmp_path):
    """A local cluster whose workers die on every run (a preload makes each run exit
    its process), and Dask allowed no death: one line instead of KilledWorker's
    traceback."""
    preload = tmp_path / "die.py"
    preload.write_text(
        "import os\nimport golden.runner\n\n"
        "golden.runner.run_one = lambda *args, **kwargs: os._exit(1)\n"
    )
    dying = {
        "distributed.worker.preload": [str(preload)],
        "distributed.scheduler.allowed-failures": 0,
    }
    with dask.config.set(dying):
        status = exit_status([*GRID, "--workers", "1"])
    assert_fault(
        status,
        capsys.readouterr().err,
        "every worker that ran one of the runs died (1 in a row)",
        "0 of 2 runs stored in",
    )
    assert files_under(tmp_path / "results") == {}


# ------------------------------------------------------------------------ Ctrl-C


def default_sigint() -> None:
    """Ctrl-C's default, as at a terminal (a background job starts with it
    ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Runs python -m golden, held where argv[1] says until a signal comes: in the import of
# golden.cli ("imports"), in a finalizer run there ("finalizer", where Python can only
# print a KeyboardInterrupt), in code there that swallows it ("swallowed", as torch's
# import of numpy does), in the local cluster's start, its workers started ("start"),
# or as the client of the started cluster starts ("close"), and then again as the
# cluster closes: a second Ctrl-C lands in that cleanup.
HELD = """
import runpy, sys, threading, time
where = sys.argv.pop(1)
def hold():
    print("held", flush=True)
    time.sleep(3600)
class Finalized:
    def __del__(self):
        hold()
def swallowed():
    try:
        hold()
    except BaseException:
        pass
held = {"imports": hold, "finalizer": Finalized, "swallowed": swallowed}
if where in held:
    class Hold:
        def find_spec(self, name, path=None, target=None):
            if name == "golden.cli":
                held[where]()
    sys.meta_path.insert(0, Hold())
else:
    import distributed
    from distributed import LocalCluster
    start, client = LocalCluster.__init__, distributed.Client.__init__
    def held_start(self, *args, **kwargs):
        start(self, *args, **kwargs)
        print("held", flush=True)
        threading.Event().wait()
    def held_client(self, *args, **kwargs):
        client(self, *args, **kwargs)
        hold()
    def held_close(self, *args, **kwargs):
        print("closing", flush=True)
        sys.stdin.readline()
    if where == "start":
        LocalCluster.__init__ = held_start
    else:
        distributed.Client.__init__ = held_client
        LocalCluster.close = held_close
sys.argv[0] = "golden"
runpy.run_module("golden", run_name="__main__", alter_sys=True)
"""

CTRL_C = {
    "imports, twice": ("imports", 2, None),
    "finalizer": ("finalizer", 1, None),
    "swallowed": ("swallowed", 1, None),
    "cluster start": ("start", 1, None),
    "cluster close": ("close", 1, "closing"),
}


@pytest.mark.parametrize("where, presses, again", CTRL_C.values(), ids=CTRL_C.keys())
def test_ctrl_c_is_one_line_from_the_first_instant(tmp_path, where, presses, again):
    """Ctrl-C, to the whole process group as at a terminal (the workers too): while
    python -m golden imports (pressed twice), in a finalizer, where an import swallows
    it, while its local cluster starts, or as a sweep starts and then again as its
    cluster closes. Each time one line, exit status 130, and no result."""
    err_file = tmp_path / "stderr"
    with err_file.open("w") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", HELD, where, *GRID, "--workers", "1"],
            env=environment(tmp_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
            preexec_fn=default_sigint,
        )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [*map(lines.put, child.stdout)], daemon=True
    ).start()

    def wait_for(said: str) -> None:
        while lines.get(timeout=DEADLINE_S).strip() != said:
            pass

    try:
        wait_for("held")
        for _ in range(presses):
            os.killpg(child.pid, signal.SIGINT)
        if again is not None:
            wait_for(again)
            os.killpg(child.pid, signal.SIGINT)
        assert child.wait(timeout=DEADLINE_S) == 130
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert err_file.read_text() == interrupt.LINE + "\n"
    assert files_under(tmp_path / "results") == {}


# ------------------------------------------------------------- the resource tracker


def resource_tracker_of(pid: int) -> int | None:
    """The multiprocessing resource tracker started by process ``pid``, if any."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):  # not a process, or gone
            continue
        if b"resource_tracker" in command and int(parent) == pid:
            return int(entry.name)
    return None


def test_a_killed_resource_tracker_is_restarted_without_a_word(tmp_path):
    """The tracker of a sweep's local cluster killed as soon as it runs: the driver
    starts another, silently, and the sweep ends as usual with every record."""
    sweep = subprocess.Popen(
        [sys.executable, "-m", "golden", *GRID, "--workers", "1"],
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while (tracker := resource_tracker_of(sweep.pid)) is None:
            assert time.monotonic() < deadline and sweep.poll() is None
            time.sleep(0.05)
        os.kill(tracker, signal.SIGKILL)
        out, err = sweep.communicate(timeout=DEADLINE_S)
    finally:
        sweep.kill()
    assert sweep.returncode == 0 and err == "", err
    assert "custom: 2 of 2 runs stored" in out
    assert len(Store(tmp_path / "results").load("custom", QUICK)) == 2

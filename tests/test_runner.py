"""Checks of golden.runner on real Dask clusters: the embedded local cluster, an
external scheduler with two workers started here on 127.0.0.1, a worker killed in the
middle of a run, Ctrl-C, and the plan. Runs train the paper's CNN for one epoch on the
quick MNIST subsets.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import golden.experiments as ex
import golden.runner as runner
from golden.experiments import Experiment, Protocol
from golden.store import Store, run_id

REPO_ROOT = Path(__file__).resolve().parent.parent
PAIRS = [(0.05, 0.5), (0.05, 0.9)]
QUICK_CNN = Protocol("quick", epochs=1, long_epochs=2, seeds=(0, 1), quick_data=True)
CUSTOM = ["grid", "--protocol", "quick", "--lrs", "0.05", "--momenta", "0.5,0.9"]


def golden_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "golden", *args]


def environment(results: Path) -> dict:
    return {
        **os.environ,
        "GOLDEN_RESULTS": str(results),
        "PYTHONPATH": str(REPO_ROOT),
        "GOLDEN_SCHEDULER": "",
    }


def without_time(run: dict) -> dict:
    return {key: value for key, value in run.items() if key != "wall_time_s"}


def test_the_embedded_cluster_makes_the_records_of_the_in_process_runner(tmp_path):
    """Two worker processes of the default local cluster; each record equals, bit for
    bit, the history run_one makes in this process for the same configuration."""
    pairs = Experiment(
        "pairs", lambda proto, store: ex.as_variants(PAIRS), lambda p: p.epochs
    )
    store = Store(tmp_path / "results")
    folder = runner.sweep(pairs, QUICK_CNN, store, workers=2, progress=False)
    runs = store.load("pairs", QUICK_CNN)
    assert len(runs) == 4 and sorted(p.stem for p in folder.glob("*.json")) == sorted(
        run_id(c) for c in pairs.configs(QUICK_CNN)
    )
    threads = torch.get_num_threads()
    try:
        for run in runs[:2]:
            again = runner.run_one(ex.TrainConfig(**run["config"]), True)
            assert without_time(again) == without_time(run)
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def refusing_port():
    """A loopback port held bound but not listening: a connection to it is refused, and
    no other process can take it while the test runs (a port found free and let go
    could be)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


# Every wait on a process started here is bounded, generously: a loaded machine is
# slow, not wrong.
START_TIMEOUT_S = 300


def written_address(scheduler_file: Path) -> str:
    """The address a scheduler wrote to ``scheduler_file``, once the file is whole."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            return json.loads(scheduler_file.read_text())["address"]
        except (FileNotFoundError, ValueError, KeyError):  # not yet, or half-written
            time.sleep(0.1)
    pytest.fail(f"no scheduler wrote {scheduler_file} within {START_TIMEOUT_S} s")


@pytest.fixture
def cluster(tmp_path):
    """A ``dask scheduler`` and two single-threaded ``dask worker`` processes (no
    nannies, so a killed worker stays dead) on 127.0.0.1; yields (address, worker
    processes). The scheduler takes a port the system gives it (port 0) and writes its
    address to a file the workers read: no port is guessed."""
    scheduler_file = tmp_path / "scheduler.json"
    env = environment(tmp_path / "unused")
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--scheduler-file",
            str(scheduler_file),
            "--dashboard-address",
            "127.0.0.1:0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nthreads",
                "1",
                "--no-nanny",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    from dask.distributed import Client

    try:
        address = written_address(scheduler_file)
        with Client(address, timeout=f"{START_TIMEOUT_S}s") as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
            yield address, client, workers
    finally:
        for process in (*workers, scheduler):
            process.kill()
            process.wait()


def test_a_sweep_runs_on_an_external_cluster(tmp_path, cluster):
    address, _, _ = cluster
    done = subprocess.run(
        golden_command("sweep", *CUSTOM, "--scheduler", address),
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "custom: 4 of 4 runs stored" in done.stdout
    assert len(Store(tmp_path).load("custom", ex.PROTOCOLS["quick"])) == 4


def test_a_worker_killed_during_a_run_is_replaced_and_nothing_is_lost(
    tmp_path, cluster
):
    address, client, workers = cluster
    sweep = subprocess.Popen(
        golden_command("sweep", *CUSTOM, "--scheduler", address),
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids = {pid: worker for worker, pid in client.run(os.getpid).items()}
    killed = None
    deadline = time.monotonic() + START_TIMEOUT_S
    while killed is None and time.monotonic() < deadline:
        busy = [worker for worker, keys in client.processing().items() if keys]
        if busy:
            killed = next(pid for pid, worker in pids.items() if worker == busy[0])
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    assert killed is not None, f"no run started within {START_TIMEOUT_S} s"
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err
    folder = Store(tmp_path).folder("custom", ex.PROTOCOLS["quick"])
    assert len(Store(tmp_path).load("custom", ex.PROTOCOLS["quick"])) == 4
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in folder.glob("*.json")
    )
    assert [w.pid for w in workers if w.poll() is None] == [
        w.pid for w in workers if w.pid != killed
    ]


def default_sigint() -> None:
    """Ctrl-C's default, as at a terminal: a shell's background job (CI's, say) starts
    its children with SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_ends_a_sweep_with_one_line(tmp_path):
    """Ctrl-C reaches the whole process group, workers included: one line, exit 130, and
    the records already written stay intact."""
    sweep = subprocess.Popen(
        golden_command(
            "sweep",
            "grid",
            "--protocol",
            "quick",
            "--lrs",
            "0.05,0.1",
            "--momenta",
            "0.5,0.9",
            "--workers",
            "2",
        ),
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    folder = Store(tmp_path).folder("custom", ex.PROTOCOLS["quick"])
    deadline = time.monotonic() + 180
    while not list(folder.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(folder.glob("*.json")), "no run finished within three minutes"
    os.killpg(sweep.pid, signal.SIGINT)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130
    assert err.splitlines() == [
        "golden: interrupted; finished runs are stored and a rerun resumes from them"
    ]
    assert all(Store(tmp_path).read(path) is not None for path in folder.glob("*.json"))


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    with refusing_port() as port:
        done = subprocess.run(
            golden_command("sweep", *CUSTOM, "--scheduler", f"tcp://127.0.0.1:{port}"),
            env={
                **environment(tmp_path),
                "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s",
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 2
    assert (
        len(done.stderr.splitlines()) == 1
        and "cannot reach the Dask scheduler" in done.stderr
    )


def test_the_plan_of_the_paper_protocol(tmp_path):
    """600 runs of 30 epochs per data size, and an estimate, before anything runs."""
    for name, train_images in (("paper", "54,000"), ("paper_half", "27,000")):
        done = subprocess.run(
            golden_command("sweep", "grid", "--protocol", name, "--plan"),
            env=environment(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert f"{train_images} train" in done.stdout
        assert (
            "runs: 600 of 30 epochs, folds 0-9 of a stratified 10-fold split"
            in done.stdout
        )
        assert (
            "0 stored, 600 to run (18,000 epochs)" in done.stdout
            and "core-hours" in done.stdout
        )
        assert not list(tmp_path.rglob("*.json"))  # a plan runs nothing

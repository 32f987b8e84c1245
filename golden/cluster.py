"""The Dask cluster a sweep runs on: a local one, or an existing one by address.

An address is checked before anything else runs, and an existing cluster before any run
is sent to it: a wrong address, a server that is not a Dask scheduler, a cluster without
workers, or workers that cannot import this golden each end in one line
(:class:`ExperimentError`), never in a traceback or a silent wait. Dask's own waits are
not all bounded (its handshake waits for ever on a peer that never answers, and a worker
that cannot unpickle a run dies while the sweep waits for another), so each wait here
is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
import warnings
from pathlib import Path

from golden.protocols import ExperimentError

SCHEDULER_VARIABLE = "GOLDEN_SCHEDULER"
ADDRESS_FORMS = (
    "tcp://HOST:PORT (or HOST:PORT; tls://HOST:PORT once Dask's TLS settings name a CA "
    "file and a client certificate)"
)
HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\]")
PORT = re.compile(r"[0-9]{1,5}")
# How long an existing cluster may take to show a worker and to have every worker import
# golden (torch included): a safety limit, far above what either takes.
WORKERS_S = 300.0


class ClusterFailure(ExperimentError):
    """A cluster that failed a sweep on the way (its scheduler lost, or a run that kills
    every worker it is given); the runs finished before are stored."""


def scheduler_address(scheduler: str | None) -> str | None:
    """The ``--scheduler`` address, else ``GOLDEN_SCHEDULER``, else None (a local
    cluster); a malformed address is an :class:`ExperimentError` naming the accepted
    forms."""
    if scheduler:
        return _checked(scheduler, "--scheduler")
    address = os.environ.get(SCHEDULER_VARIABLE, "").strip()
    return _checked(address, SCHEDULER_VARIABLE) if address else None


def _checked(address: str, source: str) -> str:
    scheme, separator, location = address.rpartition("://")
    scheme = scheme if separator else "tcp"
    host, colon, port = location.rpartition(":")
    host, port = (host, port) if colon else (location, "")
    problem = _address_problem(scheme, host, port)
    if problem is not None:
        raise ExperimentError(
            f"{source} {address!r} is not a Dask scheduler address ({problem}): "
            f"give {ADDRESS_FORMS}"
        )
    if scheme == "tls" and _client_tls()["ssl_context"] is None:
        raise ExperimentError(
            f"{source} {address!r} asks for TLS, but Dask's TLS settings name no CA "
            "file and client certificate (distributed.comm.tls.ca-file and "
            ".client.cert, e.g. DASK_DISTRIBUTED__COMM__TLS__CA_FILE): set them, or "
            "use tcp://"
        )
    return f"{scheme}://{location}"


def _address_problem(scheme: str, host: str, port: str) -> str | None:
    """What is wrong with an address's parts, or None."""
    if scheme not in ("tcp", "tls"):
        return f"scheme {scheme + '://'!r}, not tcp:// or tls://"
    if not host:
        return "no host"
    if not HOST.fullmatch(host):
        return f"bad host {host!r}"
    if not port:
        return "no port"
    if not PORT.fullmatch(port) or not 0 < int(port) < 65536:
        return f"bad port {port!r}"
    return None


def _client_tls() -> dict:
    """Dask's connection arguments for a client, from its configuration (the same ones
    its Client uses)."""
    from distributed.security import Security

    try:
        return Security().get_connection_args("client")
    except (OSError, ValueError) as error:  # a missing or unreadable certificate
        raise ExperimentError(f"Dask's TLS settings cannot be used: {error}") from None


def answer_s() -> float:
    """How long a scheduler has to accept a connection and to answer it: Dask's connect
    timeout (``distributed.comm.timeouts.connect``)."""
    import dask
    from dask.utils import parse_timedelta

    return parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")


@contextlib.contextmanager
def cluster_client(scheduler: str | None, workers: int, processes: bool = True):
    """A Dask client: of the cluster at ``scheduler`` (checked: a scheduler answers
    there, and its workers import golden), or of a local cluster of ``workers``
    single-threaded workers (separate processes unless ``processes`` is False)."""
    address = scheduler_address(scheduler)
    if address is None:
        with _local_client(workers, processes) as client:
            yield client
        return
    from dask.distributed import Client  # and Dask's settings with it

    _check_scheduler(address)
    _quiet_dask_logs()
    try:
        client = Client(address, timeout=answer_s())
    except (OSError, TimeoutError) as error:
        raise ExperimentError(_unreachable(address, error)) from None
    with client:
        _check_workers(client, address)
        yield client


def _quiet_dask_logs() -> None:
    """The driver's errors are golden's one line, not the tracebacks Dask logs (of a
    client that lost its scheduler, as the process ends): Dask's log handlers print
    only what is critical, from here on."""
    for handler in logging.getLogger("distributed").handlers:
        handler.setLevel(logging.CRITICAL)


def _unreachable(address: str, error: Exception) -> str:
    return (
        f"cannot reach the Dask scheduler at {address} ({error}): start it or fix "
        "--scheduler / GOLDEN_SCHEDULER"
    )


def _check_scheduler(address: str) -> None:
    """Something listens at ``address``, and answers Dask's handshake and identity call
    as a scheduler: each within :func:`answer_s`."""
    seconds = answer_s()
    host, _, port = address.partition("://")[2].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as error:
        raise ExperimentError(_unreachable(address, error)) from None
    try:
        answer = asyncio.run(asyncio.wait_for(_identity(address), seconds))
    except TimeoutError:
        what = f"no answer to Dask's handshake within {seconds:g} s"
    except Exception as error:  # whatever a peer that speaks another protocol causes
        tls = error if isinstance(error, ssl.SSLError) else error.__cause__
        if isinstance(tls, ssl.SSLError):
            raise ExperimentError(
                f"the TLS handshake with {address} failed ({tls.reason or tls}): is it "
                "a Dask scheduler with TLS, and do Dask's TLS settings fit it?"
            ) from None
        what = f"its answer is not in Dask's protocol ({type(error).__name__})"
    else:
        kind = answer.get("type") if isinstance(answer, dict) else None
        if kind == "Scheduler":
            return
        what = f"a Dask {kind}" if isinstance(kind, str) else "an answer without a type"
    raise ExperimentError(
        f"{address} accepts connections, but is not a Dask scheduler ({what}): "
        "point --scheduler / GOLDEN_SCHEDULER at one, e.g. tcp://HOST:8786"
    )


async def _identity(address: str):
    from distributed.comm import connect

    comm = await connect(address, timeout=answer_s(), **_client_tls())
    try:
        await comm.write({"op": "identity"})
        return await comm.read()
    finally:
        comm.abort()


def golden_home() -> str:
    """Where a worker imports golden from. Sent to each worker by reference, before any
    run: a worker without golden, or without what a run imports (torch, the data
    loaders), fails here and says so, instead of dying as it unpickles a run. The
    training loop stands for the runner, which builds on this module: it imports what
    a run needs."""
    from golden import train

    return str(Path(train.__file__).resolve().parent)


def _check_workers(client, address: str) -> None:
    """The cluster has a worker, and each of its workers imports golden.

    A run sent to a worker that cannot import golden kills that worker, and the sweep
    then waits for ever for another."""
    try:
        client.wait_for_workers(1, timeout=WORKERS_S)
        answers = client.run(golden_home, on_error="return", callback_timeout=WORKERS_S)
    except TimeoutError:
        raise ExperimentError(
            f"the Dask scheduler at {address} has no worker that answers (waited "
            f"{WORKERS_S:g} s): start workers with `dask worker {address}`"
        ) from None
    failed = {w: e for w, e in answers.items() if isinstance(e, BaseException)}
    if failed:
        worker, error = sorted(failed.items())[0]
        if type(error) is not Exception:  # Dask wraps some in a plain Exception
            error = f"{type(error).__name__}: {error}"
        raise ExperimentError(
            f"{len(failed)} of {len(answers)} workers at {address} cannot import "
            f"golden (at {worker}: {error}): start each worker "
            "in an environment with this checkout of golden (PYTHONPATH) and its "
            "requirements"
        )


@contextlib.contextmanager
def _local_client(workers: int, processes: bool):
    import dask
    from dask.distributed import Client, LocalCluster

    # No dashboard; the scheduler's own HTTP routes listen on a free loopback port, not
    # 8787.
    options = dict(
        n_workers=workers,
        threads_per_worker=1,
        processes=processes,
        host="127.0.0.1" if processes else None,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        memory_limit=0,
        silence_logs=logging.CRITICAL,
    )
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, so glibc hands
    # every freed batch tensor back to the kernel and faults it in again: training then
    # runs about three times slower (half its time in the kernel). Workers keep the
    # default.
    no_trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    _quiet_resource_tracker()
    # The workers, started now, inherit a stderr on /dev/null: what they and trackers
    # they may start print is not the user's concern (Dask's logs are silenced anyway).
    with dask.config.set(no_trim), _stderr_to_null():
        cluster = _built_with_sigint_blocked(lambda: LocalCluster(**options))
    with cluster, Client(cluster) as client:
        yield client


def _built_with_sigint_blocked(build):
    """``build()``, on a thread that blocks SIGINT.

    The threads it starts inherit the mask, and so do the worker processes they spawn:
    Ctrl-C at a terminal, which reaches the whole process group, stops the driver alone
    (one line, no worker tracebacks). The driver's own thread keeps SIGINT and waits
    here interruptibly, so Ctrl-C works while the cluster starts; the half-started
    workers end with the driver (Dask ties them to it)."""
    built = {}

    def target():
        try:
            built["value"] = build()
        except BaseException as error:  # handed to the waiting thread
            built["error"] = error

    thread = threading.Thread(target=target, name="golden cluster start", daemon=True)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    thread.join()
    if "error" in built:
        raise built["error"]
    return built["value"]


# The resource tracker frees what the workers leave behind (their queues' semaphores,
# after Ctrl-C), as it is there to do, with a warning per kind on its stderr. If it is
# killed, the driver or a worker starts another with a warning of its own, and the new
# one prints a traceback for each semaphore the old one knew as the cluster closes. None
# of this is the user's concern: every tracker the driver starts, and every worker,
# writes to /dev/null, and the driver's warning is filtered.


def _quiet_resource_tracker() -> None:
    """Start the tracker here, before any other thread (starting, it unblocks SIGINT in
    the thread that starts it), and have it, and any tracker started after it, write
    nothing on stderr."""
    from multiprocessing import resource_tracker

    warnings.filterwarnings(
        "ignore", "resource_tracker", UserWarning, "multiprocessing.resource_tracker"
    )
    tracker = resource_tracker._resource_tracker  # the one every register call uses
    start = tracker.ensure_running
    if not getattr(start, "quiet", False):

        def ensure_running() -> None:
            with _stderr_to_null():
                start()

        ensure_running.quiet = True
        tracker.ensure_running = ensure_running
    tracker.ensure_running()


@contextlib.contextmanager
def _stderr_to_null():
    """File descriptor 2 on /dev/null meanwhile, so that a process started now inherits
    that."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)

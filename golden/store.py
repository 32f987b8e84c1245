"""The results store: one strict-JSON record per finished run, under a root folder.

A record lives at ``<root>/<experiment>/<protocol>-<digest>/<run id>.json`` and holds
the run's configuration and history, its protocol, provenance and a checksum. A record
counts only if it is a regular file of at most MAX_RECORD_BYTES, parses as strict JSON,
its checksum holds, every field of its run is there with its type and one value per
epoch, its configuration gives its file name and its experiment and protocol give its
folder: a record copied over another run's file is refused, so no seed is counted twice.
:meth:`Store.read` is the one gate: every reader (sweeps, studies, figures) gets records
through it. Writes are atomic (a temporary file of the writer's own, ``fsync``,
rename), so two sweeps on one store never corrupt it; reading never writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import subprocess
import uuid
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from golden import settings
from golden.files import UnusableFile, prove_writable, read_bounded
from golden.protocols import THREADS_PER_RUN, ExperimentError, Protocol
from golden.train import TrainConfig

DEFAULTS = {name: f.default for name, f in TrainConfig.__dataclass_fields__.items()}
TAGS = {
    "loss": "{}",
    "optimizer": "{}",
    "schedule": "{}",
    "label_noise": "noise{}",
    "probe_every": "probe{}",
    "data_fraction": "frac{}",
    "fold": "f{}",
    "dataset": "{}",
}


# Records are a few kB (the largest stored, a 30-epoch run, is about 31 kB).
MAX_RECORD_BYTES = 16 * 2**20


class CorruptRecordWarning(UserWarning):
    """A record file that does not count (named, so that it can be removed or rerun)."""


class NotARecord(ValueError):
    """Why a file does not count as a record, in a few words."""


class RecordNotWritten(ExperimentError):
    """A record that could not be written; the records written before it are kept."""


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value, nullable: bool = False) -> bool:
    """A list of numbers (or nulls, where a non-finite value was stored as null)."""
    return isinstance(value, list) and all(
        _number(item) or (nullable and item is None) for item in value
    )


def _counts(matrix) -> bool:
    return isinstance(matrix, list) and all(
        isinstance(row, list)
        and all(isinstance(n, int) and not isinstance(n, bool) for n in row)
        for row in matrix
    )


# The fields of a record's run besides its configuration, and the type of each.
RUN_FIELDS = {
    "diverged": lambda value: isinstance(value, bool),
    "wall_time_s": _number,
    "train_loss": lambda value: _numbers(value, nullable=True),
    "val_acc": _numbers,
    "test_acc": _numbers,
}
LATER_FIELDS = {  # absent from the records made before they existed
    "lr": _numbers,
    "val_confusion": lambda value: isinstance(value, list) and all(map(_counts, value)),
    "probes": lambda value: (
        isinstance(value, dict)
        and all(_numbers(series, nullable=True) for series in value.values())
    ),
}
EVALUATED = ("val_acc", "test_acc", "val_confusion")  # after each finished epoch


def _check_run(run, config: TrainConfig) -> None:
    """NotARecord unless ``run`` holds every field with its type, a loss and a learning
    rate per epoch trained, and the evaluations of each finished epoch."""
    if not isinstance(run, dict):
        raise NotARecord("its run is not an object")
    for name, valid in (*RUN_FIELDS.items(), *LATER_FIELDS.items()):
        if name not in run and name in LATER_FIELDS:
            continue
        if name not in run or not valid(run[name]):
            raise NotARecord(f"its field {name!r} is missing or mistyped")
    trained = len(run["train_loss"])
    finished = trained - 1 if run["diverged"] else trained
    expected = {"train_loss": trained, "lr": trained}
    expected.update(dict.fromkeys(EVALUATED, finished))
    complete = run["diverged"] or trained == config.epochs
    if not (1 <= trained <= config.epochs and complete) or any(
        len(run[name]) != length for name, length in expected.items() if name in run
    ):
        raise NotARecord(f"its history does not fit epochs={config.epochs}")


def _short(number: float) -> str:
    """``{:g}`` where it round-trips (0.01 -> '0.01'), else the full repr."""
    text = f"{number:g}"
    return text if float(text) == number else repr(number)


def run_id(config: TrainConfig) -> str:
    """``lr0.01_m0.9_s0``, with a tag such as ``mse``, ``noise0.2`` or ``f3`` for every
    field of TAGS that differs from TrainConfig's default."""
    tags = [
        TAGS[name].format(_short(value) if isinstance(value, float) else value)
        for name, value in asdict(config).items()
        if name in TAGS and value != DEFAULTS[name]
    ]
    return "_".join(
        [
            f"lr{_short(config.lr)}",
            f"m{_short(config.momentum)}",
            *tags,
            f"s{config.seed}",
        ]
    )


def _checksum(payload: dict) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, allow_nan=False).encode()
    ).hexdigest()


def _finite(value):
    """``value`` with every non-finite float replaced by None, as strict JSON has no
    Infinity to write."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not strict JSON")


def provenance(
    engine: str = "per-run", device: str = "cpu", threads: int = THREADS_PER_RUN
) -> dict:
    """Library versions, the git commit (``GOLDEN_GIT_COMMIT`` where there is no git
    checkout, as on a borrowed machine), the engine, the device, the CPU threads and
    the precision (fp32 everywhere: TF32 is off on a GPU), stored with every record."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=settings.REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = os.environ.get("GOLDEN_GIT_COMMIT", "").strip() or "unknown"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "git_commit": commit,
        "machine": platform.machine(),
        "threads": threads,
        "engine": engine,
        "device": device,
        "precision": "fp32",
    }


class Store:
    """Records under ``root`` (the module's docstring says what makes one count)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @classmethod
    def default(cls) -> "Store":
        """The store of ``GOLDEN_RESULTS``, else ``results/``: the one place the default
        is resolved; everything else is given a store."""
        return cls(settings.results_dir())

    def folder(self, experiment_name: str, proto: Protocol) -> Path:
        return self.root / experiment_name / proto.folder_name()

    def path(self, folder: Path, config: TrainConfig) -> Path:
        return folder / f"{run_id(config)}.json"

    def prepare(self, folder: Path, configs: list[TrainConfig]) -> None:
        """Fail in one line, before any training, if a record of ``configs`` could
        not be written in ``folder``."""
        try:
            prove_writable(folder)
        except OSError as error:
            raise ExperimentError(
                f"cannot write results to {folder} ({error.strerror or error}): "
                "make it writable, or choose a folder you can write with --results "
                "or GOLDEN_RESULTS"
            ) from None
        for config in configs:
            path = self.path(folder, config)
            if path.exists() and not path.is_file():
                raise ExperimentError(
                    f"{path} is in the way of a record (not a regular file): remove it"
                )

    def write(
        self,
        folder: Path,
        history: dict,
        proto: Protocol,
        experiment_name: str,
        device: str = "cpu",
        threads: int = THREADS_PER_RUN,
    ) -> Path:
        """Write one run atomically, as strict JSON, with a checksum of its content;
        its provenance names the protocol's engine and the ``device`` it ran on."""
        payload = _finite(
            {
                "experiment": experiment_name,
                "protocol": asdict(proto),
                "run": history,
                "provenance": provenance(proto.engine, device, threads),
            }
        )
        record = {**payload, "checksum": _checksum(payload)}
        path = self.path(folder, TrainConfig(**history["config"]))
        temporary = folder / f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(temporary, "w") as stream:
                stream.write(
                    json.dumps(record, indent=1, sort_keys=True, allow_nan=False)
                )
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
            directory = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as error:
            # on a file system turned read-only even this fails: nothing to remove then
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise RecordNotWritten(
                f"cannot write the record {path} ({error.strerror or error})"
            ) from None
        return path

    def read(self, path: Path) -> dict | None:
        """The record at ``path``, or None if it does not count (see the module)."""
        try:
            return self.check(path)
        except NotARecord:
            return None

    def check(self, path: Path) -> dict:
        """The record at ``path``, or NotARecord saying why it does not count."""
        try:
            text = read_bounded(path, MAX_RECORD_BYTES).decode()
            record = json.loads(text, parse_constant=_refuse_constant)
        except UnusableFile as why:
            raise NotARecord(str(why)) from None
        except OSError as error:
            raise NotARecord(f"unreadable ({error.strerror or error})") from None
        except (ValueError, RecursionError):
            raise NotARecord("not strict JSON") from None
        try:
            payload = {
                key: record[key]
                for key in ("experiment", "protocol", "run", "provenance")
            }
            checksum_holds = record.get("checksum") == _checksum(payload)
        except (KeyError, TypeError, AttributeError, ValueError, RecursionError):
            raise NotARecord("not a record") from None
        if not checksum_holds:
            raise NotARecord("its checksum does not hold")
        try:
            config = TrainConfig(**{**DEFAULTS, **payload["run"]["config"]})
            proto = Protocol(
                **{**payload["protocol"], "seeds": tuple(payload["protocol"]["seeds"])}
            )
        except (KeyError, TypeError, ValueError):
            raise NotARecord("its configuration or protocol is not valid") from None
        _check_run(payload["run"], config)
        if (
            path.name != f"{run_id(config)}.json"
            or path.parent.parent.name != payload["experiment"]
            or path.parent.name != proto.folder_name()
        ):
            raise NotARecord("the record of another file or folder")
        return record

    def load(self, experiment_name: str, proto: Protocol) -> list[dict]:
        """Every run of an experiment under a protocol that counts (the ``run`` part of
        each record, a non-finite loss back as inf); a file that does not count is named
        in a CorruptRecordWarning and left alone."""
        runs = []
        for path in sorted(self.folder(experiment_name, proto).glob("*.json")):
            try:
                record = self.check(path)
            except NotARecord as why:
                warnings.warn(
                    f"ignored {path}: {why}", CorruptRecordWarning, stacklevel=2
                )
                continue
            run = record["run"]
            # a record made before a field existed holds that field's default
            run["config"] = {**DEFAULTS, **run["config"]}
            run["train_loss"] = [
                math.inf if loss is None else loss for loss in run["train_loss"]
            ]
            runs.append(run)
        return runs

    def pending(self, configs: list[TrainConfig], folder: Path) -> list[TrainConfig]:
        return [
            config for config in configs if self.read(self.path(folder, config)) is None
        ]

"""The results store: one strict-JSON record per finished run, under a root folder.

A record lives at ``<root>/<experiment>/<protocol>-<digest>/<run id>.json`` and holds
the run's configuration and history, its protocol, provenance and a checksum. A record
counts only if it parses as strict JSON, its checksum holds, its configuration gives its
file name and its experiment and protocol give its folder: a record copied over another
run's file is refused, so no seed is counted twice. Writes are atomic (a temporary file
of the writer's own, ``fsync``, rename), so two sweeps on one store never corrupt it;
reading never writes.
"""

from __future__ import annotations

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


class CorruptRecordWarning(UserWarning):
    """A record file that does not count (named, so that it can be removed or rerun)."""


def _short(number: float) -> str:
    """``{:g}`` where it round-trips (0.01 -> '0.01'), the full repr where it does
    not."""
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
    """``value`` with every non-finite float replaced by None: strict JSON has no
    Infinity."""
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
    """Records under ``root``; see the module's docstring for what makes a record
    count."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @classmethod
    def default(cls) -> "Store":
        return cls(settings.results_dir())

    def folder(self, experiment_name: str, proto: Protocol) -> Path:
        return self.root / experiment_name / proto.folder_name()

    def path(self, folder: Path, config: TrainConfig) -> Path:
        return folder / f"{run_id(config)}.json"

    def prepare(self, folder: Path, configs: list[TrainConfig]) -> None:
        """Fail in one line, before any training, if the runs' records could not be
        written."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-test.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise ExperimentError(
                f"cannot write results to {folder} ({error.strerror or error}): "
                "make it writable or set GOLDEN_RESULTS to a folder you can write"
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
            temporary.unlink(missing_ok=True)
            raise ExperimentError(
                f"cannot write the record {path} ({error.strerror or error})"
            ) from None
        return path

    def read(self, path: Path) -> dict | None:
        """The record at ``path``, or None if it does not count (see the module's
        docstring)."""
        try:
            record = json.loads(path.read_text(), parse_constant=_refuse_constant)
            payload = {
                key: record[key]
                for key in ("experiment", "protocol", "run", "provenance")
            }
            if record.get("checksum") != _checksum(payload):
                return None
            config = TrainConfig(**{**DEFAULTS, **payload["run"]["config"]})
            proto = Protocol(
                **{**payload["protocol"], "seeds": tuple(payload["protocol"]["seeds"])}
            )
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            RecursionError,
        ):
            return None
        if (
            path.name != f"{run_id(config)}.json"
            or path.parent.parent.name != payload["experiment"]
            or path.parent.name != proto.folder_name()
        ):
            return None
        return record

    def load(self, experiment_name: str, proto: Protocol) -> list[dict]:
        """Every run of an experiment under a protocol that counts (the ``run`` part of
        each record, a non-finite loss back as inf); a file that does not count is named
        in a CorruptRecordWarning and left alone."""
        runs = []
        for path in sorted(self.folder(experiment_name, proto).glob("*.json")):
            record = self.read(path)
            if record is None:
                warnings.warn(
                    f"ignored {path}: not an intact record of this folder",
                    CorruptRecordWarning,
                    stacklevel=2,
                )
                continue
            run = record["run"]
            # records from before a field existed
            run["config"] = {
                **DEFAULTS,
                **run["config"],
            }
            run["train_loss"] = [
                math.inf if loss is None else loss for loss in run["train_loss"]
            ]
            runs.append(run)
        return runs

    def pending(self, configs: list[TrainConfig], folder: Path) -> list[TrainConfig]:
        return [
            config for config in configs if self.read(self.path(folder, config)) is None
        ]

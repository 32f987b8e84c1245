"""The claims ledger: every claim the book tests, with the verdict its chapter prints.

Each row is built from the verdict value that a chapter prints (the same call the
chapter makes, see :func:`verdicts`), so the ledger cannot disagree with the chapters:
its one-word verdict is the study's finding looked up in :data:`WORDS_BY_FINDING` (or a
function of the verdict's own flags, for the studies that judge two things), and its
numbers are read from the verdict's numbers. The few rows without an experiment (a
derivation flagged as a postulate, claims the book cannot test) say so and carry no
result. The one-seed runs of the training chapter decide nothing and are not a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from golden import experiments, report, theory
from golden.protocols import number_list, protocol, replicates_text

WORDS = (
    "reproduced",
    "not reproduced",
    "partly",
    "not testable here",
    "flagged as a postulate",
)
"""The one-word verdicts of the ledger."""

WORDS_BY_FINDING: dict[str, dict[str, str]] = {
    # claim: no pair of the grid beats the golden pair
    "grid": {
        "first": "reproduced",
        "tied": "partly",  # not beaten, but other pairs have higher means
        "suggestive": "partly",
        "beaten": "not reproduced",
        "no golden": "not testable here",
    },
    "contenders": {
        "first": "reproduced",
        "tied": "partly",
        "beaten": "not reproduced",
        "no golden": "not testable here",
    },
    # claim: the golden pair does better than its effective step predicts
    "effective_lr": {
        "above": "reproduced",
        "on": "not reproduced",
        "below": "not reproduced",
        "undetectable": "not testable here",
        "missing": "not testable here",
    },
    # claim: an MI-driven learning-rate decay trains better than a constant rate
    # the grid's claim asked again on Fashion-MNIST, at its longest stage
    "fashion": {
        "holds": "partly",  # not beaten; "reproduced" where it ranks first
        "beaten": "not reproduced",
        "no golden": "not testable here",
    },
    "mutual_info": {
        "higher": "reproduced",
        "tied": "not reproduced",
        "lower": "not reproduced",
        "untested": "not testable here",
    },
}
"""For the studies whose claim is judged by one finding: finding -> word."""

STUDIES = (
    "grid",
    "contenders",
    "effective_lr",
    "breakeven",
    "mse",
    "noise",
    "mutual_info",
    "fashion",
)
"""Every study whose verdict the ledger carries (all but the training chapter's)."""


@dataclass(frozen=True)
class Entry:
    """One claim: its source, the one-word verdict, the numbers and epochs it rests
    on, and the section that tests it."""

    claim: str
    source: str  # citation keys, as MyST roles
    verdict: str  # one of WORDS
    numbers: str
    epochs: str
    section: str  # a MyST reference to the section
    study: str = ""  # the study whose verdict decided it ("" for none)
    finding: str = ""  # that verdict's finding

    def __post_init__(self):
        if self.verdict not in WORDS:
            raise ValueError(f"{self.verdict!r} is not a ledger word")


def cite(*keys: str) -> str:
    return "; ".join(f"{{cite:t}}`{key}`" for key in keys)


def _pm(estimate) -> str:
    """A mean with its 95% interval, ``n/a`` where there is none."""
    return format(estimate, ".4f")


# --- the studies ----------------------------------------------------------------------


def grid_entry(found) -> Entry:
    """The 2-epoch grid (:func:`golden.studies.grid.verdict`)."""
    if found.finding == "no golden":
        numbers = "fewer than two golden runs learned"
    else:
        numbers = f"golden {_pm(found.golden)}, rank {found.rank} of {found.pairs}"
        best = found.best
        if best is not None:
            numbers += (
                f"; golden − best other {best} (p = {best.p_value:.3f}, Holm "
                f"{best.p_adjusted:.3f}, max-t {found.best_max_t:.3f})"
            )
    return Entry(
        "No pair of the grid of learning rates and momenta beats the golden pair, "
        "which shares the first place with other pairs (MNIST, plain SGD)",
        cite("jaeger2024double"),
        WORDS_BY_FINDING["grid"][found.finding],
        numbers,
        str(found.epochs),
        "{ref}`grid-paired-test`",
        "grid",
        found.finding,
    )


def contenders_entry(found) -> Entry:
    """The 30-epoch rung (:func:`golden.studies.contenders.verdict`)."""
    if found.finding == "no golden":
        numbers = "fewer than two golden folds learned"
    else:
        golden = next(g for g in found.ranking if g.key == experiments.GOLDEN_PAIR)
        numbers = (
            f"golden {_pm(golden.estimate('test_acc'))}, rank {found.golden_rank} of "
            f"{len(found.ranking)} (equal means share a rank)"
        )
        ahead = found.ahead
        top = [c for c in ahead if found.ranks[c.b] == found.ranks[ahead[0].b]]
        numbers += "".join(
            f"; golden − {report.pair_label(c.b)} {c} (Holm {c.p_adjusted:.3f})"
            for c in top
        )
    folds = {run.config.fold for group in found.ranking for run in group.runs}
    return Entry(
        "The same claim at the 2024 text's length, for the pairs that successive "
        f"halving promoted ({replicates_text(folds, True)})",
        cite("jaeger2024double"),
        WORDS_BY_FINDING["contenders"][found.finding],
        numbers,
        str(found.epochs),
        "{ref}`grid-thirty-epochs`",
        "contenders",
        found.finding,
    )


def effective_lr_entries(found, epochs: int) -> list[Entry]:
    """The effective step (:func:`golden.studies.effective_lr.verdict`): whether the
    momentum matters beyond η/(1−α), and whether the golden pair beats its curve."""
    m = found.measures
    golden = found.golden
    special = (
        "the golden pair had a diverged seed"
        if golden is None
        else f"golden − curve {golden.residual:+.4f} ({golden.z:+.1f} local spreads "
        f"of {golden.spread:.4f})"
    )
    return [
        Entry(
            "The golden values are special: the golden pair does better than its "
            "effective step η/(1−α) alone predicts (the book's reading)",
            cite("jaeger2020golden", "jaeger2024double"),
            WORDS_BY_FINDING["effective_lr"][found.finding],
            special,
            str(epochs),
            "{ref}`effective-lr`",
            "effective_lr",
            found.finding,
        ),
        Entry(
            "To leading order the heavy ball depends on η and α only through "
            "η/(1−α); tested on the accuracy of the grid",
            cite("kovachki2021continuous"),
            "not reproduced" if m.alpha_matters else "reproduced",
            f"leave-one-out R² {m.fit.alone.r2_loo:.3f} from η/(1−α) alone, "
            f"{m.fit.extended.r2_loo:.3f} with α (F-test p = {m.fit.f_p:.2g})",
            str(epochs),
            "{ref}`effective-lr`",
            "effective_lr",
            "α matters" if m.alpha_matters else "α adds little",
        ),
    ]


def breakeven_word(found) -> str:
    """Less gradient noise and better-spread noise with a larger early step, judged at
    matched training loss where the records allow: both, one or neither."""
    if not found.trends or all(t.n < 3 for t in found.trends.values()):
        return "not testable here"
    fair = found.matched if found.matched is not None else found
    shown = [fair.noise_falls, fair.spread_improves]
    return "reproduced" if all(shown) else "partly" if any(shown) else "not reproduced"


def breakeven_entry(found, epochs: int) -> Entry:
    """The break-even study (:func:`golden.studies.breakeven.verdict`)."""
    t = found.trends

    def rhos(trends) -> str:
        return (
            f"variance ρ = {trends['grad_variance'].rho:+.2f}, conditioning ρ = "
            f"{trends['grad_conditioning'].rho:+.2f}"
        )

    numbers = f"at the epoch's end: {rhos(t)}" if t else "no run learned"
    if found.matched is not None:
        numbers += f"; at matched loss: {rhos(found.matched.trends)}"
    numbers += f"; golden pair: {found.finding}"
    return Entry(
        "A larger learning rate early lowers the variance of the gradient noise and "
        "improves the conditioning of its covariance",
        cite("jastrzebski2020breakeven"),
        breakeven_word(found),
        numbers,
        str(epochs),
        "{ref}`breakeven-study`",
        "breakeven",
        found.finding,
    )


def mse_word(found) -> str:
    """Cross-entropy learns faster in the first epoch, and ends significantly ahead at
    the golden pair: both, one or neither."""
    if found.finding == "untested":
        return "not testable here"
    shown = [found.finding == "slower", experiments.GOLDEN_PAIR in found.ahead(1)]
    return "reproduced" if all(shown) else "partly" if any(shown) else "not reproduced"


def mse_entry(found) -> Entry:
    """Cross-entropy against squared error (:func:`golden.studies.mse.verdict`)."""
    if found.finding == "untested":
        numbers = "the golden pair did not learn under one of the losses"
    else:
        (ce, sq), (ce1, sq1) = found.final, found.first
        numbers = (
            f"golden pair: cross-entropy {_pm(ce)}, squared error {_pm(sq)}; after "
            f"one epoch (validation) {ce1.mean:.4f} and {sq1.mean:.4f}"
        )
    return Entry(
        "A loss based on cross-entropy, rather than the mean squared error, goes with "
        "the golden values",
        cite("jaeger2020golden", "jaeger2021aipr"),
        mse_word(found),
        numbers,
        str(found.epochs),
        "{ref}`mse-study`",
        "mse",
        found.finding,
    )


def noise_word(found) -> str:
    """SGD ahead of Adam in accuracy and losing less to label noise: both (at every
    level), some, or neither."""
    if found.finding == "untested" and found.robustness == "untested":
        return "not testable here"
    if found.finding == "holds" and found.robustness == "SGD loses less":
        return "reproduced"
    if found.finding in ("holds", "holds at some levels") or found.robustness in (
        "SGD loses less",
        "mixed",
    ):
        return "partly"
    return "not reproduced"


def noise_entry(found) -> Entry:
    """SGD at the golden pair against Adam (:func:`golden.studies.noise.verdict`)."""
    numbers = "; ".join(
        f"{c.a[0]:.0%} noise: SGD − Adam {c} (Holm {c.p_adjusted:.3f})"
        for c in found.accuracy
    )
    return Entry(
        "SGD with the golden values generalises better than Adam and loses less to "
        "label noise",
        "the book's own question (not a claim of the 2026 abstract)",
        noise_word(found),
        (numbers or "no level compared") + f"; robustness: {found.robustness}",
        str(found.epochs),
        "{ref}`noise-study`",
        "noise",
        found.finding,
    )


def mutual_info_entry(found, epochs: int) -> Entry:
    """The MI-driven decay (:func:`golden.studies.mutual_info.verdict`)."""
    c = found.comparison
    word = (
        "not testable here"
        if found.tracking == "violates"
        else WORDS_BY_FINDING["mutual_info"][found.decay]
    )
    numbers = (
        "not compared"
        if c is None
        else f"decay − constant golden pair {c} (p = {c.p_value:.3f})"
    )
    if found.tracking in ("close", "loose"):
        numbers += f"; MI against accuracy ρ = {found.fit.rho:.3f}"
    return Entry(
        "Setting the learning rate each epoch from the mutual information between "
        "output and labels trains better than a constant rate",
        cite("vasudevan2020mi"),
        word,
        numbers,
        str(epochs),
        "{ref}`mi-study`",
        "mutual_info",
        found.decay,
    )


def fashion_entry(found) -> Entry:
    """The grid's claim on Fashion-MNIST (:func:`golden.studies.fashion.verdict`)."""
    last = found.stages[-1]
    word = (
        "reproduced"
        if found.finding == "holds" and last.rank == 1
        else WORDS_BY_FINDING["fashion"][found.finding]
    )
    t = found.transfer
    numbers = (
        "fewer than two golden runs learned"
        if found.finding == "no golden"
        else f"golden {last.golden}, rank {last.rank} of {last.pairs}, "
        f"{last.beaten_by} of {last.tested} pairs ahead after Holm"
    )
    numbers += (
        f"; rank correlation with MNIST ρ = {t.rho:.2f} ({t.low:.2f} to {t.high:.2f})"
    )
    return Entry(
        "No pair of the grid beats the golden pair on a second, harder data set "
        "(Fashion-MNIST): the 2024 claim asked again, the book's own question",
        cite("jaeger2024double"),
        word,
        numbers,
        str(last.epochs),
        "{ref}`fashion`",
        "fashion",
        found.finding,
    )


# --- the rows without an experiment ---------------------------------------------------


def fixed_entries() -> list[Entry]:
    """Claims the book derives but flags, or cannot test; no result in them."""
    half = protocol("paper_half")
    configs = experiments.experiment("grid").configs(half)
    epochs = number_list(config.epochs for config in configs)
    return [
        Entry(
            "The golden ratio p₁ gives the momentum weight α = √2·p₁ and the learning "
            "rate η = (1 − α)²",
            cite("jaeger2020golden", "jaeger2024double"),
            "flagged as a postulate",
            f"α = {theory.ALPHA:.4f}, η = {theory.ETA:.4f}: the algebra holds "
            "(SymPy); the premises that fix α and η are postulated, not derived",
            "—",
            "{doc}`golden_values`",
        ),
        Entry(
            f"The same grid on a {half.data_fraction:.0%} stratified subset of the "
            "training images: slightly lower accuracies, the golden pair again best",
            cite("jaeger2024double"),
            "not testable here",
            f"not run: its {len(configs)} runs of {epochs} epochs (protocol "
            f"{half.name}) are beyond the book's budget",
            "—",
            "{ref}`grid-thirty-epochs`",
        ),
        Entry(
            "The 2020 paper's information-theoretic loss, with the derived values, on "
            "handwritten digits",
            cite("jaeger2020golden"),
            "not testable here",
            "the loss and the numbers of the 2020 paper are not available",
            "—",
            "{doc}`loss`",
        ),
        Entry(
            "A double-Bayesian framework gives a theoretically optimal learning rate "
            "for SGD; experiments in classification, segmentation and detection "
            "corroborate it",
            cite("bui2026optimal"),
            "not testable here",
            "the abstract gives no values and no setting; the book tests the 2024 "
            "values on MNIST and Fashion-MNIST classification only",
            "—",
            "{ref}`grid`",
        ),
    ]


# --- the ledger -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdicts:
    """The verdict of every study of :data:`STUDIES`, as its chapter computes it, and
    the records it read."""

    found: dict[str, object]
    epochs: dict[str, int]
    stamps: tuple[str, ...]  # each study's protocol note
    fell_back: tuple[str, ...]  # studies that showed the quick fallback


def verdicts() -> Verdicts:
    """Every study's verdict, by the same call its chapter makes."""
    from golden.studies import (
        breakeven,
        contenders,
        fashion,
        grid,
        mse,
        mutual_info,
        noise,
    )
    from golden.studies import effective_lr as elr

    grid_study = grid.load()
    studies = {
        "grid": grid_study,
        "contenders": contenders.load(),
        "effective_lr": grid_study,
        "breakeven": breakeven.load(),
        "mse": mse.load(),
        "noise": noise.load(),
        "mutual_info": mutual_info.load(),
        "fashion": fashion.load(),
    }
    decide: dict[str, Callable] = {
        "grid": grid.verdict,
        "contenders": contenders.verdict,
        "effective_lr": elr.verdict,
        "breakeven": breakeven.verdict,
        "mse": mse.verdict,
        "noise": noise.verdict,
        "mutual_info": mutual_info.verdict,
        "fashion": fashion.verdict,
    }
    found = {name: decide[name](studies[name]) for name in STUDIES}
    # Fashion-MNIST's verdict rests on its longest stage: read from that stage's runs.
    read = {**studies, "fashion": studies["fashion"].stages[-1]}
    stamps = tuple(dict.fromkeys(study.stamp() for study in read.values()))
    return Verdicts(
        found,
        {name: study.epochs for name, study in read.items()},
        stamps,
        tuple(name for name, study in read.items() if study.fell_back),
    )


def entries(found: Verdicts | None = None) -> list[Entry]:
    """The ledger's rows: the claims of the golden-ratio texts first, then those of
    the other sources, then the rows without an experiment."""
    found = found or verdicts()
    v, epochs = found.found, found.epochs
    return [
        grid_entry(v["grid"]),
        contenders_entry(v["contenders"]),
        *effective_lr_entries(v["effective_lr"], epochs["effective_lr"]),
        mse_entry(v["mse"]),
        noise_entry(v["noise"]),
        breakeven_entry(v["breakeven"], epochs["breakeven"]),
        mutual_info_entry(v["mutual_info"], epochs["mutual_info"]),
        fashion_entry(v["fashion"]),
        *fixed_entries(),
    ]


def table(rows: list[Entry]) -> str:
    return report.table(
        ("claim", "source", "verdict", "numbers (mean ± 95% CI)", "epochs", "section"),
        (
            (
                row.claim,
                row.source,
                f"**{row.verdict}**",
                row.numbers,
                row.epochs,
                row.section,
            )
            for row in rows
        ),
    )


def page(found: Verdicts | None = None) -> str:
    """The ledger as MyST Markdown: the table and the records it was read from."""
    found = found or verdicts()
    text = table(entries(found))
    text += "\n\nRead from: " + "; ".join(found.stamps) + "."
    if found.fell_back:
        text = (
            ":::{warning}\nThe stored `book`-protocol results of "
            + ", ".join(found.fell_back)
            + " were not found, so their rows show the tiny `quick` protocol: its "
            "numbers say nothing about the claims.\n:::\n\n" + text
        )
    return text

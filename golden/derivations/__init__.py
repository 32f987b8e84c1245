"""Every step of the book's derivation chapters, as SymPy expressions and identities.

One module per chapter: :mod:`~golden.derivations.momentum` (heavy-ball momentum,
Eq. 32, and its stability on a quadratic), :mod:`~golden.derivations.bayes` (Bayes'
rule, the logarithmic equations, the unit circle and the golden ratio, Eqs. 1-31),
:mod:`~golden.derivations.golden_values` (the golden momentum and learning rate,
Eqs. 33-34), :mod:`~golden.derivations.loss` (cross-entropy and squared error) and
:mod:`~golden.derivations.effective_step` (the heavy ball in continuous time, for the
effective-learning-rate chapter). Each registers its identities in the one registry of
:mod:`golden.identities`, where the chapters check them and the tests prove them all.

Sources: Jaeger, Double-Bayesian Learning (2024), Eqs. 1-34, for the Bayes chain and the
golden values; textbook algebra for heavy-ball momentum and for the cross-entropy loss;
Kovachki & Stuart (JMLR 2021) for the continuous-time limit of the heavy ball.
"""

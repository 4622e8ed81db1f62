"""Optuna's TPE sampler for ``method: optuna`` sweeps, whose trials run as mapped Airflow tasks.

Each trial task asks for its parameters just before it trains. The study lives in memory,
rebuilt from the finished trials of the same sweep run (the platform's own experiment records),
so Optuna needs no storage of its own: its RDB storage would create a second set of tables, with
their own migrations, in the platform database, which Alembic alone owns. With the ``gpu`` pool
at one slot the trials run one after another and each sees every earlier result; with more
slots the concurrent ones sample from what has finished, as Optuna's own distributed mode does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from include.ml.training.configs import Range, Sweep

STARTUP_SHARE = 3  # a third of the trials (2 to 10) sample at random before TPE models the rest


def distributions(sweep: Sweep) -> dict[str, Any]:
    """Optuna distributions for the sweep's space: ranges are numeric, lists are categorical."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, dimension in sweep.space.items():
        if isinstance(dimension, Range):
            if dimension.integer:
                out[name] = IntDistribution(int(dimension.low), int(dimension.high), log=dimension.log)
            else:
                out[name] = FloatDistribution(dimension.low, dimension.high, log=dimension.log)
        else:
            out[name] = CategoricalDistribution(list(dimension))
    return out


def suggest(sweep: Sweep, history: Sequence[tuple[dict[str, Any], float]], *, seed: int) -> dict[str, Any]:
    """The next parameters to try, given ``(parameters, validation macro F1)`` of finished trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    startup = min(10, max(2, sweep.trials // STARTUP_SHARE))
    sampler = optuna.samplers.TPESampler(seed=seed + len(history), n_startup_trials=startup)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    dists = distributions(sweep)
    for params, value in history:
        if not all(k in params for k in dists):
            continue
        try:
            study.add_trial(
                optuna.trial.create_trial(params={k: params[k] for k in dists}, distributions=dists, value=value)
            )
        except ValueError:  # a value outside today's space (the config was edited): not evidence
            continue
    return dict(study.ask(dists).params)

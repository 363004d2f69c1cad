"""The ``als`` model: alternating least squares in closed form, explicit or implicit.

Explicit (the default): biased matrix factorisation ``mu + b_u + b_i + p_u . q_i`` fitted by
alternating exact ridge solves with weighted-lambda regularisation (Zhou, Wilkinson, Schreiber
and Pan, "Large-Scale Parallel Collaborative Filtering for the Netflix Prize", AAIM 2008).
Implicit (``implicit=True``): Hu, Koren and Volinsky, "Collaborative Filtering for Implicit
Feedback Datasets", ICDM 2008, with confidence ``1 + alpha * r``. The mathematics is in
:mod:`reclight_als.solvers`; this module is the RecModel around it (solver training kind, the
``matrix`` view, one full sweep per epoch).

Under a multi-process strategy (``ddp_model_sync``) every rank solves its contiguous shard of
users, the ranks all-gather the user factors, then the same for items: factors travel, Gram
matrices never do. The bytes this rank sends are logged per sweep as ``sweep_bytes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from reclight.data.sparse import SparseRows
from reclight.data.training import TrainingData
from reclight.distributed import Exchange
from reclight.errors import ConfigError
from reclight.model import RecModel
from reclight_als.solvers import (Bucket, outer_fits, plan_buckets, row_slice, solve_explicit,
                                  solve_explicit_cg, solve_implicit)

# Defaults per variant, chosen on validation carves of MovieLens 100K u1.base..u5.base (see the
# plugin README and benchmarks/als.py --tune); None in the signature picks these.
DEFAULTS = {
    "explicit": {"rank": 128, "reg": 0.15, "bias_reg": 0.1, "cg_steps": 3, "reg_smoothing": 0.5},
    "implicit": {"rank": 64, "reg": 50.0, "bias_reg": 0.0, "cg_steps": 0, "reg_smoothing": 0.0},
}


class AlternatingLeastSquares(RecModel):
    """Alternating least squares: explicit weighted-lambda ALS with biases (Zhou et al. 2008)
    or implicit-feedback ALS (Hu, Koren and Volinsky 2008); one epoch is one full sweep
    (all users, then all items).

    Args:
        data: the training data (filled in by the CLI).
        rank: number of latent factors (None: 128 explicit, 64 implicit); 1..min(users, items).
        reg: factor regularisation, >= 0. Explicit: the penalty per rating of a row
            (weighted-lambda: a row with n ratings pays ``reg * n``, see ``reg_smoothing``).
            Implicit: the paper's lambda. None: 0.15 explicit, 50 implicit.
        bias_reg: explicit bias penalty per rating of a row (weighted like ``reg``), >= 0.
            None: 0.1. Unused without biases and by implicit ALS.
        biases: explicit only: learn user and item biases (solved jointly with the factors).
        implicit: train on implicit feedback (HKV 2008) and rank items (top-N metrics)
            instead of predicting ratings.
        alpha: implicit confidence slope, > 0: confidence ``1 + alpha * r`` for an observed
            value r (the rating, or 1 for an interaction log).
        cg_steps: 0 solves each row exactly (Cholesky; explicit rows shorter than the vector
            width in the dual form), n > 0 takes n conjugate-gradient steps per half-sweep
            from the previous factors (Takacs et al. 2011; explicit: Jacobi-preconditioned,
            without forming the k x k systems, see ``solve_explicit_cg``). None: 3 explicit,
            0 implicit.
        init_std: standard deviation of the random initial factors.
        seed: seed of the initial factors (the same on every rank).
        reg_smoothing: explicit only, in [0, 1]: a row with n ratings pays its penalties
            times ``(1 - s) n + s n_mean`` instead of n (``n_mean``: the mean count of its
            side): 0 is weighted-lambda, 1 a plain ridge of the mean weight (Foygel et al.,
            NIPS 2011, smoothed weighted trace norm). None: 0.5 explicit.
    """

    input_kind: ClassVar[str] = "matrix"
    training_kind: ClassVar[str] = "solver"
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 5}

    def __init__(self, data: TrainingData | Mapping[str, Any], rank: int | None = None,
                 reg: float | None = None, bias_reg: float | None = None, biases: bool = True,
                 implicit: bool = False, alpha: float = 2.0, cg_steps: int | None = None,
                 init_std: float = 0.1, seed: int = 0,
                 reg_smoothing: float | None = None) -> None:
        super().__init__(data)
        self.save_hyperparameters()
        variant = "implicit" if implicit else "explicit"
        self.feedback = variant  # type: ignore[misc]  # an instance chooses its feedback kind
        defaults = DEFAULTS[variant]
        self.rank = int(defaults["rank"] if rank is None else rank)
        self.reg = float(defaults["reg"] if reg is None else reg)
        self.bias_reg = float(defaults["bias_reg"] if bias_reg is None else bias_reg)
        self.cg_steps = int(defaults["cg_steps"] if cg_steps is None else cg_steps)
        self.reg_smoothing = float(defaults["reg_smoothing"] if reg_smoothing is None
                                   else reg_smoothing)
        self.use_biases = bool(biases) and not implicit
        limit = min(self.num_users, self.num_items)
        if not 1 <= self.rank <= limit:
            raise ConfigError(f"als rank={self.rank} must be between 1 and min(users, items) = "
                              f"{limit} ({self.num_users} users, {self.num_items} items); "
                              "pass a smaller --model.rank")
        if self.reg < 0 or self.bias_reg < 0:
            raise ConfigError(f"als needs reg >= 0 and bias_reg >= 0, got reg={self.reg}, "
                              f"bias_reg={self.bias_reg}; pass --model.reg 0.1 or another "
                              "non-negative value")
        if not alpha > 0:
            raise ConfigError(f"als needs alpha > 0 (confidence 1 + alpha * r), got alpha={alpha}; "
                              "pass e.g. --model.alpha 1.0")
        if not 0.0 <= self.reg_smoothing <= 1.0:
            raise ConfigError("als needs 0 <= reg_smoothing <= 1, got "
                              f"reg_smoothing={self.reg_smoothing}; "
                              "pass e.g. --model.reg_smoothing 0.3 (0: weighted-lambda)")
        if self.cg_steps < 0 or init_std < 0:
            raise ConfigError(f"als needs cg_steps >= 0 and init_std >= 0, got cg_steps={self.cg_steps}, "
                              f"init_std={init_std}")
        gen = torch.Generator().manual_seed(int(seed))
        self.register_buffer("user_factors",
                             init_std * torch.randn(self.num_users, self.rank, generator=gen))
        self.register_buffer("item_factors",
                             init_std * torch.randn(self.num_items, self.rank, generator=gen))
        start_bias = self.use_biases
        self.register_buffer("user_bias", self.data.user_bias.clone() if start_bias
                             else torch.zeros(self.num_users))
        self.register_buffer("item_bias", self.data.item_bias.clone() if start_bias
                             else torch.zeros(self.num_items))
        self.exchange = Exchange()
        self.sweep_bytes: list[int] = []  # bytes this rank sent, per sweep
        self._plans: dict[tuple[Any, ...], Any] = {}  # bucket plans and shard slices

    # ---- predictions ------------------------------------------------------------------------
    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        dot = (self.user_factors[users] * self.item_factors[items]).sum(-1)
        if self.feedback == "implicit":
            return dot
        return self.global_mean + self.user_bias[users] + self.item_bias[items] + dot

    def score_items(self, users: Tensor) -> Tensor:
        scores = self.user_factors[users] @ self.item_factors.T
        if self.feedback == "implicit":
            return scores
        return scores + (self.global_mean + self.user_bias[users])[:, None] + self.item_bias[None, :]

    # ---- the sweep ----------------------------------------------------------------------------
    def _buckets(self, matrix: SparseRows, shard: Tensor) -> list[Bucket]:
        """The padded buckets of this rank's rows, planned once per matrix and shard."""
        start, stop = (int(shard[0]), int(shard[-1]) + 1) if len(shard) else (0, 0)
        key = (id(matrix), start, stop)
        if key not in self._plans:
            width = self.rank + (1 if self.use_biases else 0)
            self._plans[key] = plan_buckets(matrix, shard, width)
        return self._plans[key]

    def _implicit_plan(self, matrix: SparseRows, start: int,
                       stop: int) -> tuple[SparseRows, list[Bucket] | None]:
        """This rank's rows ``start:stop`` of ``matrix`` and, only where the exact implicit
        solve needs them (see :func:`outer_fits`), their padded buckets; once per matrix."""
        key = (id(matrix), start, stop, "implicit")
        if key not in self._plans:
            rows = row_slice(matrix, start, stop)
            exact_buckets = (self.cg_steps == 0
                             and not outer_fits(matrix.shape[1], self.rank))
            self._plans[key] = (rows, plan_buckets(rows, torch.arange(stop - start), self.rank)
                                if exact_buckets else None)
        return self._plans[key]

    def _row_weights(self, matrix: SparseRows) -> Tensor | None:
        """What each row's penalties are multiplied by: ``(1 - s) n + s n_mean`` for a row
        with n ratings (the smoothed weighting of Foygel, Salakhutdinov, Shamir and Srebro,
        "Learning with the Weighted Trace-norm under Arbitrary Sampling Distributions", NIPS
        2011: the row marginals mixed with the uniform ones); None for s = 0, where the solvers
        use the count itself (weighted-lambda)."""
        smoothing = self.reg_smoothing
        if smoothing == 0:
            return None
        counts = matrix.row_lengths().to(torch.float64)
        mean = counts[counts > 0].mean() if bool((counts > 0).any()) else counts.new_ones(())
        return ((1.0 - smoothing) * counts + smoothing * mean).to(torch.float32)

    def _half_sweep(self, matrix: SparseRows, shard: Tensor, solved: Tensor, solved_bias: Tensor,
                    fixed: Tensor, fixed_bias: Tensor) -> tuple[Tensor, Tensor]:
        """Solve this rank's ``shard`` of rows of ``matrix`` given the other side, then
        all-gather the rows of every rank; returns the new (factors, biases)."""
        start, stop = (int(shard[0]), int(shard[-1]) + 1) if len(shard) else (0, 0)
        empty = (matrix.row_lengths()[start:stop] == 0).to(solved.device)
        if self.feedback == "implicit":
            rows, buckets = self._implicit_plan(matrix, start, stop)
            local = solved[start:stop].clone()  # the warm start of conjugate gradient
            solve_implicit(rows, fixed, self.hparams.alpha, self.reg, local,
                           cg_steps=self.cg_steps, buckets=buckets)
            local[empty] = 0.0  # rows without entries: zero factors, never NaN
            return self.exchange.all_gather(local), solved_bias
        weights = self._row_weights(matrix)
        # Factors then bias in one vector per row (the augmented solve); also CG's warm start.
        out = torch.cat([solved, solved_bias[:, None]], dim=1) if self.use_biases else solved.clone()
        bias = fixed_bias if self.use_biases else None
        bias_reg = self.bias_reg if self.use_biases else 0.0
        if self.cg_steps > 0:
            solve_explicit_cg(matrix, start, stop, fixed, bias, self.global_mean, self.reg,
                              bias_reg, out, self.cg_steps, row_weights=weights)
        else:
            solve_explicit(self._buckets(matrix, shard), fixed, bias, self.global_mean,
                           self.reg, bias_reg, out, row_weights=weights)
        local = out[start:stop]
        local[empty] = 0.0  # zero factors and bias: the prediction falls back to mu + b_other
        gathered = self.exchange.all_gather(local.contiguous())
        if self.use_biases:
            return gathered[:, :-1].contiguous(), gathered[:, -1].contiguous()
        return gathered, solved_bias

    def solve_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, float]:
        """One full sweep: this rank's users given the items, all-gather; then its items given
        the users, all-gather."""
        self.user_factors, self.user_bias = self._half_sweep(
            batch["user_major"], batch["shard_users"], self.user_factors, self.user_bias,
            self.item_factors, self.item_bias)
        self.item_factors, self.item_bias = self._half_sweep(
            batch["item_major"], batch["shard_items"], self.item_factors, self.item_bias,
            self.user_factors, self.user_bias)
        sent = self.exchange.take_bytes()
        self.sweep_bytes.append(sent)
        return {"sweep_bytes": float(sent)}

"""ALS (``als``) beside the libraries that ship it, in the same run; ratios, not bare seconds.

Sub-commands (each prints a markdown table):

    python benchmarks/als.py tune      # defaults: validation carves of u1.base..u5.base
    python benchmarks/als.py folds     # u1..u5 test RMSE and fit time vs LensKit BiasedMF
    python benchmarks/als.py topn      # implicit, u1 NDCG@10 vs the implicit library's ALS
    python benchmarks/als.py scale --ratings 1000000   # synthetic: vs Spark MLlib and implicit

``tune`` never reads a test file: each fold's base is carved into 90% training and 10%
validation (``val_size=0.1``, seed 0) and the sweeps are run directly (the model's own
``solve_step`` on the ``matrix`` view's batch), scoring the validation carve after every sweep.
``folds`` and ``topn`` fit through a Lightning Trainer exactly as ``reclight fit`` does. A
competitor that is not installed is reported as such and reclight runs alone. Optional
dependencies: ``pip install -e plugins/reclight-als[bench]`` (torch==2.13.0 first).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import reclight  # noqa: F401  first: it sets OMP_WAIT_POLICY before anything loads torch

import numpy as np
import torch

from reclight.data import RatingDataModule
from reclight.data.ratings import Ratings
from reclight.data.views import MatrixBatches
from reclight.metrics import topn_per_user
from reclight.testing import heldout_rmse, quiet_trainer

REPO = Path(__file__).resolve().parent.parent
FOLDS = ("u1", "u2", "u3", "u4", "u5")


def data_dir() -> Path:
    root = os.environ.get("RECLIGHT_DATA")
    # Beside the repository (a checkout) or two levels up (a worktree under wt/).
    candidates = ([Path(root) / "ml-100k"] if root else
                  [REPO.parent / "shared" / "data" / "ml-100k",
                   REPO.parent.parent / "shared" / "data" / "ml-100k"])
    folder = next((c for c in candidates if (c / "u.data").is_file()), candidates[0])
    if not (folder / "u.data").is_file():
        sys.exit(f"benchmarks/als.py: MovieLens 100K not found at {folder}; set RECLIGHT_DATA")
    return folder


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def als_class() -> Any:
    from reclight.registry import get_registry

    return get_registry().get("als").load()


def ndcg_on(model: Any, dm: RatingDataModule, held: Ratings, k: int = 10) -> float:
    """NDCG@k over ``held`` (validation or test), training items excluded, full ranking: the
    core's protocol (every held-out rating relevant, users with a known held-out item)."""
    known = held.known()
    users = torch.unique(held.users[known])
    targets = torch.zeros(dm.num_users, dm.num_items, dtype=torch.bool)
    targets[held.users[known], held.items[known]] = True
    model.eval()
    with torch.no_grad():
        scores = model.score_items(users).float().masked_fill(model.seen_mask(users),
                                                             float("-inf"))
    return float(topn_per_user(scores, targets[users], k)["ndcg"].mean())


def fit_trainer(model: Any, dm: RatingDataModule, epochs: int | None = None) -> float:
    """Fit as ``reclight fit`` does (nothing written); returns the seconds."""
    epochs = model.trainer_defaults["max_epochs"] if epochs is None else epochs
    trainer = quiet_trainer(max_epochs=epochs)
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    return time.perf_counter() - start


# ---- tune ---------------------------------------------------------------------------------------
def sweep_curve(cls: Any, dm: RatingDataModule, epochs: int, score: Any, **kwargs: Any) -> list[float]:
    """Validation score after each of ``epochs`` sweeps (run directly, same math as a fit)."""
    model = cls(dm.training_data, **kwargs)
    batch = next(iter(MatrixBatches(dm.training_data)))
    curve = []
    for _ in range(epochs):
        with torch.no_grad():
            model.solve_step(batch, 0)
        curve.append(score(model))
    return curve


def tune(args: argparse.Namespace) -> None:
    cls = als_class()
    folder = data_dir()
    folds = args.folds.split(",")
    carves = {f: RatingDataModule(str(folder), split=f, val_size=0.1, seed=0) for f in folds}
    if args.implicit:
        grid = list(itertools.product([int(x) for x in args.ranks.split(",")],
                                      [float(x) for x in args.regs.split(",")],
                                      [float(x) for x in args.alphas.split(",")]))
        print("| rank | reg | alpha | " + " | ".join(f"NDCG@10 after {e}" for e in args.report)
              + " |\n|---|---|---|" + "---|" * len(args.report))
        for rank, reg, alpha in grid:
            curves = [sweep_curve(cls, dm, max(args.report), lambda m, dm=dm: ndcg_on(m, dm, dm.val),
                                  rank=rank, reg=reg, alpha=alpha, implicit=True)
                      for dm in carves.values()]
            mean = np.mean(curves, axis=0)
            print(f"| {rank} | {reg} | {alpha} | "
                  + " | ".join(f"{mean[e - 1]:.4f}" for e in args.report) + " |", flush=True)
        return
    if args.grid:  # any model arguments: {"reg_smoothing": [0, 0.5], "cg_steps": [3]}
        spec = json.loads(args.grid)
    else:
        spec = {"rank": [int(x) for x in args.ranks.split(",")],
                "reg": [float(x) for x in args.regs.split(",")],
                "bias_reg": [float(x) for x in args.bias_regs.split(",")]}
    print("| " + " | ".join(spec) + " | " + " | ".join(f"RMSE after {e}" for e in args.report)
          + " |\n|" + "---|" * (len(spec) + len(args.report)))
    for values in itertools.product(*spec.values()):
        config = dict(zip(spec, values))
        curves = [sweep_curve(cls, dm, max(args.report), lambda m, dm=dm: heldout_rmse(m, dm.val),
                              **config)
                  for dm in carves.values()]
        mean = np.mean(curves, axis=0)
        print("| " + " | ".join(str(v) for v in values) + " | "
              + " | ".join(f"{mean[e - 1]:.4f}" for e in args.report) + " |", flush=True)


# ---- folds: explicit u1..u5 vs LensKit BiasedMF ------------------------------------------------
def read_fold(folder: Path, name: str) -> Any:
    import pandas as pd

    return pd.read_csv(folder / name, sep="\t", names=["user", "item", "rating", "timestamp"])


def lenskit_fold(folder: Path, fold: str) -> tuple[float, float]:
    """LensKit BiasedMF (its ALS) with its defaults on one fold: (fit seconds, test RMSE); its
    own predictions (with its bias fallback for unknown ids), unclipped as in the anchor."""
    from lenskit import batch, topn_pipeline
    from lenskit.als import BiasedMFScorer
    from lenskit.data import from_interactions_df

    base, test = read_fold(folder, f"{fold}.base"), read_fold(folder, f"{fold}.test")
    ds = from_interactions_df(base, user_col="user", item_col="item", rating_col="rating")
    pipe = topn_pipeline(BiasedMFScorer(), predicts_ratings=True)
    start = time.perf_counter()
    pipe.train(ds)
    seconds = time.perf_counter() - start
    # n_jobs=1: its process pool is no faster on a 2-core box and needs a __main__ guard.
    pairs = test.rename(columns={"user": "user_id", "item": "item_id"})
    preds = batch.predict(pipe, pairs[["user_id", "item_id"]], n_jobs=1).to_df()
    merged = pairs.merge(preds[["user_id", "item_id", "score"]], on=["user_id", "item_id"])
    assert len(merged) == len(test), "LensKit left test pairs unscored"
    return seconds, float(np.sqrt(np.mean((merged["score"] - merged["rating"]) ** 2)))


def reclight_fold(cls: Any, folder: Path, fold: str, **kwargs: Any) -> tuple[float, float]:
    """``reclight fit --model als --data DIR --data.split FOLD``: (fit seconds, test RMSE)."""
    import lightning as L

    L.seed_everything(0, verbose=False)
    dm = RatingDataModule(str(folder), split=fold, **cls.data_defaults)
    model = cls(dm.training_data, **kwargs)
    seconds = fit_trainer(model, dm)
    test = quiet_trainer().test(model, datamodule=dm, verbose=False)[0]
    return seconds, float(test["test_rmse"])


def folds(args: argparse.Namespace) -> None:
    cls = als_class()
    folder = data_dir()
    lenskit = have("lenskit")
    if not lenskit:
        print("lenskit is not installed (pip install lenskit torch==2.13.0): reclight alone")
    rows: dict[str, list[tuple[float, float]]] = {"reclight als": [], "LensKit BiasedMF": []}
    for fold in args.folds.split(","):
        # Interleaved, so that a busy machine slows both alike.
        rows["reclight als"].append(reclight_fold(cls, folder, fold))
        if lenskit:
            rows["LensKit BiasedMF"].append(lenskit_fold(folder, fold))
        print(fold, {k: v[-1] for k, v in rows.items() if v}, flush=True)
    ours = statistics.mean(s for s, _ in rows["reclight als"])
    print("| model | mean test RMSE | fit s per fold | fit time vs reclight |\n|---|---|---|---|")
    for name, results in rows.items():
        if results:
            fit = statistics.mean(s for s, _ in results)
            print(f"| {name} | {statistics.mean(r for _, r in results):.4f} | {fit:.3f} | "
                  f"{fit / ours:.2f}x |")


# ---- topn: implicit u1 vs the implicit library ------------------------------------------------
def ndcg_of_scores(dm: RatingDataModule, held: Ratings, score: Any, k: int = 10) -> float:
    """NDCG@k of ``score(users) -> [users, items]`` scores over ``held``, training items
    excluded (the same protocol as :func:`ndcg_on`)."""
    known = held.known()
    users = torch.unique(held.users[known])
    targets = torch.zeros(dm.num_users, dm.num_items, dtype=torch.bool)
    targets[held.users[known], held.items[known]] = True
    _, seen = dm.training_data.matrix.dense(users)
    scores = torch.as_tensor(score(users)).float().masked_fill(seen, float("-inf"))
    return float(topn_per_user(scores, targets[users], k)["ndcg"].mean())


def implicit_library(data: Any, factors: int, reg: float, alpha: float, iterations: int,
                     binary: bool) -> tuple[float, Any]:
    """The implicit library's CPU ALS (conjugate gradient, its default) on reclight's training
    matrix (same indices): (fit seconds, model)."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares as ImplicitALS

    m = data.matrix
    values = np.ones(m.nnz, dtype=np.float32) if binary else m.values.numpy()
    csr = sp.csr_matrix((values, m.indices.numpy(), m.indptr.numpy()), shape=m.shape)
    model = ImplicitALS(factors=factors, regularization=reg, alpha=alpha, iterations=iterations,
                        random_state=0)
    start = time.perf_counter()
    model.fit(csr, show_progress=False)
    return time.perf_counter() - start, model


def topn(args: argparse.Namespace) -> None:
    cls = als_class()
    folder = data_dir()
    dm = RatingDataModule(str(folder), split=args.fold)
    rows = []
    model = cls(dm.training_data, implicit=True)
    seconds = fit_trainer(model, dm)
    test = quiet_trainer().test(model, datamodule=dm, verbose=False)[0]
    rows.append(("reclight als --model.implicit true (defaults)", test["test_ndcg@10"], seconds))
    if not have("implicit"):
        print("the implicit library is not installed (pip install implicit): reclight alone")
    else:
        hp = model.hparams
        configs = [("implicit ALS, its defaults, binary interactions (the anchor)",
                    dict(factors=100, reg=0.01, alpha=1.0, iterations=15, binary=True)),
                   (f"implicit ALS, reclight's defaults (rank {model.rank}, reg {model.reg}, "
                    f"alpha {hp.alpha}, {model.trainer_defaults['max_epochs']} sweeps, ratings "
                    "as r)", dict(factors=model.rank, reg=model.reg, alpha=hp.alpha,
                                  iterations=model.trainer_defaults["max_epochs"], binary=False))]
        for name, config in configs:
            fit_s, lib = implicit_library(dm.training_data, **config)
            users_f, items_f = torch.as_tensor(lib.user_factors), torch.as_tensor(lib.item_factors)
            ndcg = ndcg_of_scores(dm, dm.test, lambda u: users_f[u] @ items_f.T)
            rows.append((name, ndcg, fit_s))
    print(f"MovieLens 100K {args.fold}: training items excluded, full ranking, all test ratings "
          "relevant\n| model | NDCG@10 | fit s |\n|---|---|---|")
    for name, ndcg, fit_s in rows:
        print(f"| {name} | {ndcg:.4f} | {fit_s:.2f} |")


# ---- scale: synthetic 1M / 10M vs Spark MLlib ALS and the implicit library ---------------------
def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def known_test(dm: RatingDataModule) -> Ratings:
    return dm.test.select(dm.test.known())


def scale_one(args: argparse.Namespace) -> None:
    """One contender on the synthetic data, in its own process (so peak memory is its own);
    prints one JSON line."""
    import json

    dm = RatingDataModule(source="synthetic", synthetic_ratings=args.ratings, split="random",
                          test_size=0.1, seed=0)
    data = dm.training_data
    test = known_test(dm)
    result: dict[str, Any] = {"lib": args.lib, "ratings": data.nnz, "users": data.num_users,
                              "items": data.num_items}
    if args.lib in ("reclight", "reclight-nobias", "reclight-implicit"):
        import lightning as L

        class SweepTimer(L.Callback):
            def __init__(self) -> None:
                self.seconds: list[float] = []

            def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
                self.start = time.perf_counter()

            def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
                self.seconds.append(time.perf_counter() - self.start)

        kwargs: dict[str, Any] = {"rank": args.rank, "reg": args.reg}
        if args.lib == "reclight-implicit":
            kwargs.update(implicit=True, alpha=args.alpha, cg_steps=args.cg_steps)
        else:
            # Spark's regularisation (weighted-lambda, no smoothing) and its exact solves.
            kwargs.update(reg_smoothing=0.0, cg_steps=0)
            if args.lib == "reclight-nobias":
                kwargs.update(biases=False)
        model = als_class()(data, **kwargs)
        timer = SweepTimer()
        quiet_trainer(max_epochs=args.sweeps, callbacks=[timer]).fit(model, datamodule=dm)
        result["first_sweep_s"] = timer.seconds[0]  # includes planning the buckets
        result["sweep_s"] = statistics.median(timer.seconds[1:] or timer.seconds)
        if args.lib != "reclight-implicit":
            result["rmse"] = heldout_rmse(model, test)
        width = args.rank + (0 if args.lib == "reclight-implicit" else 1)
        result["factor_bytes"] = (data.num_users + data.num_items) * width * 4
        result["data_bytes"] = 2 * data.nnz * (8 + 4) + 8 * (data.num_users + data.num_items + 2)
    elif args.lib == "spark":
        result.update(spark_sweeps(dm, test, args))
    elif args.lib == "implicit":
        import scipy.sparse as sp  # noqa: F401

        one, _ = implicit_library(data, args.rank, args.reg, args.alpha, 1, binary=False)
        more, _ = implicit_library(data, args.rank, args.reg, args.alpha, 1 + args.sweeps,
                                   binary=False)
        result["sweep_s"] = (more - one) / args.sweeps
    result["peak_rss_bytes"] = peak_rss_bytes()
    print("RESULT " + json.dumps(result), flush=True)


def spark_sweeps(dm: RatingDataModule, test: Ratings, args: argparse.Namespace) -> dict[str, Any]:
    """Spark MLlib ALS, local[2], same rank, regParam (Spark also scales it by each row's
    ratings: ALS-WR) and sweeps; seconds per sweep from fits of 1 and 1 + sweeps iterations;
    test RMSE from its factors, clipped to the rating range like reclight's."""
    import pandas as pd
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("reclight-als-bench")
             .config("spark.driver.memory", args.spark_memory)
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    train = dm.train
    frame = pd.DataFrame({"user": train.users.numpy().astype("int32"),
                          "item": train.items.numpy().astype("int32"),
                          "rating": train.ratings.numpy()})
    df = spark.createDataFrame(frame).cache()
    df.count()
    times = {}
    model = None
    # An untimed warm-up fit first: Spark's first fit in a session pays for JIT compilation and
    # job planning, which made the 1-sweep fit slower than the longer one (a negative sweep time).
    for iters in (1, 1, 1 + args.sweeps):
        als = ALS(rank=args.rank, maxIter=iters, regParam=args.reg, userCol="user",
                  itemCol="item", ratingCol="rating", seed=0, nonnegative=False)
        start = time.perf_counter()
        model = als.fit(df)
        model.userFactors.count()  # fit is lazy in parts: force the factors
        times[iters] = time.perf_counter() - start
    users = model.userFactors.toPandas()
    items = model.itemFactors.toPandas()
    u = np.zeros((dm.num_users, args.rank), dtype=np.float32)
    v = np.zeros((dm.num_items, args.rank), dtype=np.float32)
    u[users["id"].to_numpy()] = np.stack(users["features"].to_numpy())
    v[items["id"].to_numpy()] = np.stack(items["features"].to_numpy())
    tu, ti = test.users.numpy(), test.items.numpy()
    lo, hi = dm.rating_range
    pred = np.clip((u[tu] * v[ti]).sum(1), lo, hi)
    rmse = float(np.sqrt(np.mean((pred - test.ratings.numpy()) ** 2)))
    spark.stop()
    return {"sweep_s": (times[1 + args.sweeps] - times[1]) / args.sweeps,
            "one_sweep_fit_s": times[1], "full_fit_s": times[1 + args.sweeps], "rmse": rmse}


def scale(args: argparse.Namespace) -> None:
    """Each contender in a fresh process, one after the other; a table with ratios."""
    import json
    import subprocess

    libs = ["reclight", "reclight-nobias"] + (["spark"] if have("pyspark") else []) + \
        ["reclight-implicit"] + (["implicit"] if have("implicit") else [])
    if not have("pyspark"):
        print("pyspark is not installed (pip install pyspark; needs Java): no Spark rows")
    if not have("implicit"):
        print("the implicit library is not installed: no implicit rows")
    results = {}
    for lib in libs:
        cmd = [sys.executable, __file__, "scale-one", "--lib", lib, "--ratings", str(args.ratings),
               "--rank", str(args.rank), "--reg", str(args.reg), "--sweeps", str(args.sweeps),
               "--alpha", str(args.alpha), "--cg_steps", str(args.cg_steps),
               "--spark_memory", args.spark_memory]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode or not lines:
            print(f"{lib} failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}")
            if lib == "spark" and ("JAVA_HOME" in out.stderr
                                   or "Java gateway process exited" in out.stderr):
                print("Spark needs Java 17 on the PATH")
            continue
        results[lib] = json.loads(lines[0][len("RESULT "):])
        print(lib, results[lib], f"({time.perf_counter() - start:.0f} s wall)", flush=True)
    print(f"\nsynthetic {args.ratings} ratings, rank {args.rank}, reg {args.reg}, "
          f"{args.sweeps} sweeps timed (implicit: alpha {args.alpha}, CG steps {args.cg_steps})")
    print("| contender | s per sweep | test RMSE | peak RSS MiB | ratio |\n|---|---|---|---|---|")
    for lib, r in results.items():
        base = "spark" if lib.startswith("reclight") and lib != "reclight-implicit" else (
            "implicit" if lib == "reclight-implicit" else None)
        ratio = (f"{results[base]['sweep_s'] / r['sweep_s']:.1f}x faster than {base}"
                 if base in results else "")
        rmse = f"{r['rmse']:.4f}" if "rmse" in r else "-"
        print(f"| {lib} | {r['sweep_s']:.3f} | {rmse} | {r['peak_rss_bytes'] / 2**20:.0f} | {ratio} |")
    if "reclight" in results:
        r = results["reclight"]
        print(f"reclight explicit needs {r['data_bytes'] / 2**20:.0f} MiB for the data (CSR, both "
              f"layouts) and {r['factor_bytes'] / 2**20:.0f} MiB for the factors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tune", help="validation carves of u1.base..u5.base")
    t.add_argument("--folds", default=",".join(FOLDS))
    t.add_argument("--implicit", action="store_true")
    t.add_argument("--ranks", default="16,32,64")
    t.add_argument("--regs", default="0.05,0.1")
    t.add_argument("--bias_regs", default="0.1")
    t.add_argument("--grid", help="explicit: JSON object, model argument -> list of values (all "
                   "combinations), instead of --ranks/--regs/--bias_regs")
    t.add_argument("--alphas", default="1.0")
    t.add_argument("--report", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10, 15, 20])
    f = sub.add_parser("folds", help="u1..u5 test RMSE and fit time beside LensKit BiasedMF")
    f.add_argument("--folds", default=",".join(FOLDS))
    n = sub.add_parser("topn", help="implicit ALS, u1 NDCG@10 beside the implicit library")
    n.add_argument("--fold", default="u1")
    for name in ("scale", "scale-one"):
        c = sub.add_parser(name, help="synthetic data vs Spark MLlib and implicit")
        c.add_argument("--ratings", type=int, default=1_000_000)
        c.add_argument("--rank", type=int, default=10)
        c.add_argument("--reg", type=float, default=0.1)
        c.add_argument("--sweeps", type=int, default=5)
        c.add_argument("--alpha", type=float, default=1.0)
        c.add_argument("--cg_steps", type=int, default=3)
        c.add_argument("--spark_memory", default="6g")
        if name == "scale-one":
            c.add_argument("--lib", required=True)
    args = parser.parse_args()
    {"tune": tune, "folds": folds, "topn": topn, "scale": scale, "scale-one": scale_one}[args.command](args)


if __name__ == "__main__":
    main()

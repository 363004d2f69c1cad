"""Top-N side by side in one run: reclight's models beside RecBole and the ``implicit`` library.

Sub-commands (each prints a markdown table):

    python benchmarks/topn.py compare           # MovieLens 100K u1: every model, NDCG/Recall/...
    python benchmarks/topn.py tune --model cdae # defaults: validation carve of u1.base only
    python benchmarks/topn.py testphase --ratings 1000000   # synthetic: test-phase seconds
    python benchmarks/topn.py recommend --users 100000 --items 50000  # streamed recommend

Protocol of ``compare`` (issue 16): ``u1.base`` as training interactions, ``u1.test`` held out,
every rating counts, training items excluded, full ranking over all items, users with at least
one held-out interaction. reclight's rows come from the core's own test phase (a Lightning
Trainer, as ``reclight fit`` runs it); the ``implicit`` library's BPR is scored with reclight's
metric function on the same indices; RecBole's rows come from RecBole's own evaluator on the
same two files, and its Pop row is also scored by reclight's metric function: the two must agree
(the cross-check of the metric definitions). A library that is not installed is reported and
skipped. Optional dependencies: ``pip install torch==2.13.0 recbole==1.2.1 implicit``.

``tune`` never reads a test file: ``u1.base`` is carved into 80% training and 20% validation
(``val_size=0.2``, seed 0, the same share ``u1.test`` holds) and the model is trained by its own
``training_loss`` on the view the model declares, scoring validation NDCG@10 at chosen epochs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import reclight  # noqa: F401  first: it sets OMP_WAIT_POLICY before anything loads torch

import lightning as L
import numpy as np
import torch

from reclight.baseline import BiasBaseline, baseline_metrics
from reclight.console import lightning_noise
from reclight.data import RatingDataModule
from reclight.data.ratings import Ratings
from reclight.metrics import topn_at
from reclight.lightning_cli import trainer_defaults_for
from reclight.registry import get_registry

REPO = Path(__file__).resolve().parent.parent
METRICS = (("ndcg", "NDCG@10"), ("recall", "Recall@10"), ("precision", "Precision@10"),
           ("hit", "HR@10"), ("mrr", "MRR@10"))

# reclight models that rank, with the settings that make them rank: the benchmark lists models,
# the core never does. Explicit models are ranked by predicted rating (the core ranks them too).
RECLIGHT_ROWS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("cdae (defaults)", "cdae", {}),
    ("mf --model.loss bpr", "mf", {"loss": "bpr"}),
    ("als --model.implicit true", "als", {"implicit": True}),
    ("ease (examples/reclight-ease)", "ease", {}),
    ("als (explicit, ranked by rating)", "als", {}),
    ("autorec (explicit, ranked by rating)", "autorec", {}),
    ("deeprec (explicit, ranked by rating)", "deeprec", {}),
    ("mf (squared loss, ranked by rating)", "mf", {}),
    ("mlp-mf (explicit, ranked by rating)", "mlp-mf", {}),
    ("resnet-mf (explicit, ranked by rating)", "resnet-mf", {}),
)


def data_dir() -> Path:
    root = os.environ.get("RECLIGHT_DATA")
    candidates = [Path(root) / "ml-100k"] if root else [
        up / "shared" / "data" / "ml-100k" for up in (REPO.parent, REPO.parent.parent)]
    folder = next((c for c in candidates if (c / "u.data").is_file()), candidates[0])
    if not (folder / "u.data").is_file():
        sys.exit(f"benchmarks/topn.py: MovieLens 100K not found at {folder}; set RECLIGHT_DATA")
    return folder


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def model_class(name: str) -> Any:
    return get_registry().get(name).load()


def targets_of(dm: RatingDataModule, held: Ratings) -> tuple[torch.Tensor, torch.Tensor]:
    """(users with a known held-out item, boolean targets [those users, items])."""
    known = held.known()
    users = torch.unique(held.users[known])
    targets = torch.zeros(dm.num_users, dm.num_items, dtype=torch.bool)
    targets[held.users[known], held.items[known]] = True
    return users, targets[users]


def metrics_of_scores(dm: RatingDataModule, held: Ratings, scores_of: Any,
                      k: int = 10) -> dict[str, float]:
    """reclight's top-N metrics of ``scores_of(users) -> [users, items]``, training items
    excluded (the core's protocol, applied to another library's scores)."""
    users, targets = targets_of(dm, held)
    _, seen = dm.training_data.matrix.dense(users)
    scores = torch.as_tensor(scores_of(users)).float().masked_fill(seen, float("-inf"))
    per_user = topn_at(scores, targets, [k])[k]
    return {name: float(per_user[name].mean()) for name, _ in METRICS}


# ---- compare ----------------------------------------------------------------------------------
def user_datamodule(cls: Any, folder: Path, fold: str) -> RatingDataModule:
    """The DataModule ``reclight fit --model NAME --data FOLDER --data.split FOLD`` builds: the
    model's ``data_defaults`` (batch size) applied, as the CLI applies them."""
    return RatingDataModule(str(folder), split=fold, **cls.data_defaults)


def user_trainer(cls: Any, **overrides: Any) -> L.Trainer:
    """A Trainer with the settings ``reclight fit`` gives ``cls``: the core's and the model's
    ``trainer_defaults`` (epochs included); nothing written, no progress output."""
    settings = {**trainer_defaults_for(cls), "logger": False, "enable_checkpointing": False,
                "enable_progress_bar": False, "enable_model_summary": False, **overrides}
    settings.pop("default_root_dir", None)
    return L.Trainer(**settings)


def reclight_row(name: str, options: dict[str, Any], folder: Path,
                 fold: str) -> dict[str, float]:
    """Fit and test one model as ``reclight fit`` does (seed 0, the model's data and trainer
    defaults, its ``cpu_threads`` through the callback it brings): what a user gets."""
    cls = model_class(name)
    L.seed_everything(0, verbose=False)
    dm = user_datamodule(cls, folder, fold)
    model = cls(dm.training_data, **options)
    trainer = user_trainer(cls)
    with lightning_noise(False):
        start = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        test = trainer.test(model, datamodule=dm, verbose=False)[0]
    row = {m: float(test[f"test_{m}@10"]) for m, _ in METRICS}
    row.update(fit_s=fit_s, test_s=time.perf_counter() - start)
    return row


def implicit_rows(dm: RatingDataModule) -> list[tuple[str, dict[str, float]]]:
    """The implicit library's CPU ALS and BPR, its defaults, on reclight's binary training
    matrix, scored by reclight's metric function on the same indices."""
    import scipy.sparse as sp
    from implicit import __version__
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    m = dm.training_data.matrix
    csr = sp.csr_matrix((np.ones(m.nnz, dtype=np.float32), m.indices.numpy(), m.indptr.numpy()),
                        shape=m.shape)
    rows = []
    for name, cls in (("ALS", AlternatingLeastSquares), ("BPR", BayesianPersonalizedRanking)):
        model = cls(random_state=0)
        start = time.perf_counter()
        model.fit(csr, show_progress=False)
        fit_s = time.perf_counter() - start
        users_f = torch.as_tensor(np.asarray(model.user_factors))
        items_f = torch.as_tensor(np.asarray(model.item_factors))
        row = metrics_of_scores(dm, dm.test, lambda u, a=users_f, b=items_f: a[u] @ b.T)
        row.update(fit_s=fit_s)
        rows.append((f"implicit {__version__} {name}, defaults", row))
    return rows


def recbole_files(folder: Path, fold: str, out: Path) -> None:
    """``<fold>.base`` / ``<fold>.test`` as RecBole atomic files (its predefined-split form)."""
    out.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    for part in ("base", "test"):
        text = (folder / f"{fold}.{part}").read_text()
        (out / f"ml100k.{part}.inter").write_text(header + text)


def recbole_rows(folder: Path, fold: str, models: list[str], epochs: dict[str, int],
                 dm: RatingDataModule) -> dict[str, dict[str, float]]:
    """RecBole's models on the same split, scored by RecBole's own full-ranking evaluator; no
    validation (nothing is chosen on the test file), the last epoch's model is evaluated."""
    for alias, target in (("float_", "float64"), ("complex_", "complex128"), ("unicode_", "str_")):
        if not hasattr(np, alias):  # RecBole 1.2.1 still imports these numpy-1 names
            setattr(np, alias, getattr(np, target))
    import logging
    import warnings

    warnings.filterwarnings("ignore")  # RecBole's pandas/torch deprecation chatter
    logging.getLogger().setLevel(logging.ERROR)
    rows: dict[str, dict[str, float]] = {}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        recbole_files(folder, fold, Path(tmp) / "ml100k")
        os.chdir(tmp)  # RecBole writes log_tensorboard/ into the working directory
        try:
            rows.update(_recbole_rows(tmp, models, epochs, dm))
        finally:
            os.chdir(cwd)
    return rows


def _recbole_rows(tmp: str, models: list[str], epochs: dict[str, int],
                  dm: RatingDataModule) -> dict[str, dict[str, float]]:
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    rows: dict[str, dict[str, float]] = {}
    for name in models:
        config = Config(model=name, dataset="ml100k", config_dict={
            "data_path": tmp, "benchmark_filename": ["base", "test", "test"],
            "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
            "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
            "metrics": ["NDCG", "Recall", "Precision", "Hit", "MRR"], "topk": [10],
            "epochs": epochs.get(name, 300), "eval_step": 0, "device": "cpu",
            "use_gpu": False, "show_progress": False, "seed": 0, "reproducibility": True,
            "checkpoint_dir": tmp, "state": "ERROR", "save_dataset": False,
            "save_dataloaders": False,
            "metric_decimal_place": 10})  # its default rounds results to 4 decimals
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train, _, test = data_preparation(config, dataset)
        model = get_model(config["model"])(config, train.dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        start = time.perf_counter()
        trainer.fit(train, None, saved=False, show_progress=False)
        fit_s = time.perf_counter() - start
        result = trainer.evaluate(test, load_best_model=False, show_progress=False)
        rows[name] = {m: float(result[f"{r.lower()}@10"]) for m, r in
                      (("ndcg", "ndcg"), ("recall", "recall"), ("precision", "precision"),
                       ("hit", "hit"), ("mrr", "mrr"))}
        rows[name]["fit_s"] = fit_s
        if name == "Pop":
            rows.update(pop_cross_check(model, trainer, train, test, dataset, dm, fit_s))
    return rows


# ---- the Pop cross-check ------------------------------------------------------------------------
# RecBole 1.2.1's Pop counts an item with ``item_cnt[item] = item_cnt[item] + 1`` over a batch's
# item ids: an item repeated in a batch is counted once, so its counts saturate at the number of
# training batches (79 on u1.base: 80,000 positives plus one sampled negative each, 2,048 rows a
# batch, negatives counted too). Its top items tie at 79 and 78 for 444 of the 459 test users,
# and which tied items make a top 10 depends on the column order, which differs between
# RecBole's ids and reclight's: permuting the columns of RecBole's own score matrix moves its
# HR@10 between 0.76 and 0.85. So the cross-check compares evaluators on score matrices
# without ties: (a) reclight's metric function on RecBole's own matrix, targets and training
# mask, in RecBole's column order; (b) training popularity with ties broken by raw item id,
# loaded into RecBole's Pop for RecBole's pipeline, and given to reclight's core test phase.
def popularity_key(counts: torch.Tensor, raw: list[str], order: dict[str, int]) -> torch.Tensor:
    """Training count with ties broken by raw id (earlier in ``order`` first), as integers
    exact in float32: count * len(order) + (len(order) - 1 - position)."""
    n = len(order)
    tie = torch.tensor([n - 1 - order[r] for r in raw], dtype=torch.long)
    return counts.long() * n + tie


class TieFreePopularity(BiasBaseline):
    """reclight's popularity baseline with ties broken by raw item id (see popularity_key)."""

    def __init__(self, data: Any, key: torch.Tensor) -> None:
        super().__init__(data, feedback="implicit")
        self.register_buffer("key", key.float(), persistent=False)

    def score_items(self, users: torch.Tensor) -> torch.Tensor:
        return self.key.expand(len(users), -1)


def recbole_matrix(model: Any, test: Any, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RecBole's own full-sort scores (padding id and training items at -inf, as its trainer
    sets them) and held-out targets, one row per evaluated user, in RecBole's item order."""
    scores, targets = [], []
    model.eval()
    with torch.no_grad():
        for interaction, history, pos_u, pos_i in test:
            s = model.full_sort_predict(interaction).view(-1, n_items).float()
            s[:, 0] = -float("inf")
            s[history] = -float("inf")
            t = torch.zeros_like(s, dtype=torch.bool)
            t[pos_u, pos_i] = True
            scores.append(s)
            targets.append(t)
    return torch.cat(scores), torch.cat(targets)


def mean_metrics(scores: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    per_user = topn_at(scores, targets, [10])[10]
    return {name: float(per_user[name].mean()) for name, _ in METRICS}


def pop_cross_check(model: Any, trainer: Any, train: Any, test: Any, dataset: Any,
                    dm: RatingDataModule, fit_s: float) -> dict[str, dict[str, float]]:
    """Rows of the cross-check (see the comment above); RecBole's Pop is changed in place."""
    n_items = dataset.item_num
    rows = {"Pop, reclight's metric function on RecBole's own matrix":
            dict(mean_metrics(*recbole_matrix(model, test, n_items)), fit_s=fit_s)}
    # (b): one tie-free popularity for both pipelines
    rb_raw = [str(t) for t in dataset.field2id_token[dataset.iid_field]]  # [0] is padding
    order = {r: i for i, r in enumerate(sorted(set(rb_raw[1:]) | set(dm.item_map.raw)))}
    rb_counts = torch.bincount(train.dataset.inter_feat[dataset.iid_field], minlength=n_items)
    key = popularity_key(rb_counts[1:], rb_raw[1:], order)
    model.item_cnt = torch.cat([key.new_zeros(1), key]).view(-1, 1)
    model.max_cnt = model.item_cnt.max(dim=0)[0]
    result = trainer.evaluate(test, load_best_model=False, show_progress=False)
    rows["tie-free training popularity, RecBole's evaluator"] = dict(
        {m: float(result[f"{m}@10"]) for m, _ in METRICS}, fit_s=0.0)
    ours = TieFreePopularity(dm.training_data, popularity_key(
        dm.training_data.item_counts, list(dm.item_map.raw), order))
    with lightning_noise(False):
        test_metrics = user_trainer(BiasBaseline).test(ours, datamodule=dm, verbose=False)[0]
    rows["tie-free training popularity, reclight's core test phase"] = dict(
        {m: float(test_metrics[f"test_{m}@10"]) for m, _ in METRICS}, fit_s=0.0)
    rows["tie-free popularity from RecBole's model, reclight's metric function"] = dict(
        metrics_of_scores(dm, dm.test, recbole_scorer(model, dataset, dm)), fit_s=0.0)
    return rows


def recbole_scorer(model: Any, dataset: Any, dm: RatingDataModule) -> Any:
    """``scores_of(users)`` in reclight's indices from a RecBole model's full-sort scores."""
    from recbole.data.interaction import Interaction

    def ids(field: str, raw: Any) -> torch.Tensor:
        return torch.as_tensor(dataset.token2id(field, [str(x) for x in raw]))

    items = ids("item_id", dm.item_map.raw)
    uid = dataset.uid_field

    def scores_of(users: torch.Tensor) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            rb_users = ids("user_id", dm.user_map.to_raw(users.numpy()))
            out = model.full_sort_predict(Interaction({uid: rb_users}))
        return out.view(len(users), -1)[:, items].float()
    return scores_of


def fmt_row(label: str, row: dict[str, float], base: dict[str, float] | None) -> str:
    cells = [f"{row[m]:.4f}" for m, _ in METRICS]
    ratio = f"{row['ndcg'] / base['ndcg']:.2f}" if base else "-"
    return f"| {label} | " + " | ".join(cells) + f" | {row['fit_s']:.2f} | {ratio} |"


def compare(args: argparse.Namespace) -> None:
    folder = data_dir()
    dm = RatingDataModule(str(folder), split=args.fold)
    load = os.getloadavg()[0]
    rows: list[tuple[str, dict[str, float]]] = []
    wanted = args.models.split(",") if args.models else None
    for label, name, options in RECLIGHT_ROWS:
        if wanted and label.split(" ")[0] not in wanted and name not in wanted:
            continue
        rows.append((f"reclight {label}", reclight_row(name, options, folder, args.fold)))
        print(f"  done: {label} ({rows[-1][1]['fit_s']:.1f} s)", file=sys.stderr, flush=True)
    pop_scores = dm.training_data.matrix.dense(torch.arange(dm.num_users))[1].sum(0).float()
    pop_ours = metrics_of_scores(dm, dm.test, lambda u: pop_scores.expand(len(u), -1))
    pop_ours["fit_s"] = 0.0
    rows.append(("reclight metric function on training popularity", pop_ours))
    if have("implicit") and not args.no_implicit:
        rows.extend(implicit_rows(dm))
    elif not have("implicit"):
        print("the implicit library is not installed (pip install implicit): row skipped")
    recbole: dict[str, dict[str, float]] = {}
    if have("recbole") and not args.no_recbole:
        recbole = recbole_rows(folder, args.fold, args.recbole_models.split(","),
                               {"Pop": 1, "CDAE": args.recbole_epochs,
                                "BPR": args.recbole_epochs}, dm)
        for name, row in recbole.items():
            if " " in name:  # a row of the Pop cross-check
                rows.append((f"cross-check: {name}", row))
                continue
            epochs = f", {args.recbole_epochs} epochs" if name in ("CDAE", "BPR") else ""
            shipped = " (as shipped: tied scores, see below)" if name == "Pop" else ""
            rows.append((f"RecBole 1.2.1 {name}, defaults{epochs}{shipped}", row))
    elif not have("recbole"):
        print("RecBole is not installed (pip install torch==2.13.0 recbole==1.2.1): rows skipped")
    base = recbole.get("CDAE")
    print(f"MovieLens 100K {args.fold}.base -> {args.fold}.test: all ratings count, training "
          f"items excluded, full ranking; load average {load:.1f} at the start (2 cores shared)\n"
          "| model | " + " | ".join(t for _, t in METRICS)
          + " | fit s | NDCG / RecBole CDAE |\n|---|" + "---|" * (len(METRICS) + 2))
    for label, row in rows:
        print(fmt_row(label, row, base))
    by = dict(rows)
    cdae, bpr = by.get("reclight cdae (defaults)"), by.get("reclight mf --model.loss bpr")
    if cdae and base:
        print(f"\ncdae fit {cdae['fit_s']:.2f} s / RecBole CDAE fit {base['fit_s']:.2f} s = "
              f"{cdae['fit_s'] / base['fit_s']:.2f} (target <= 0.25)")
    lib = next((row for label, row in rows if label.startswith("implicit ")
                and label.endswith("BPR, defaults")), None)
    if bpr and lib:
        print(f"mf bpr fit {bpr['fit_s']:.2f} s / implicit BPR fit {lib['fit_s']:.2f} s = "
              f"{bpr['fit_s'] / lib['fit_s']:.2f}")
    if "Pop" in recbole:
        print("\nPop cross-check, largest |RecBole - reclight| over the five metrics "
              "(agree to 4 decimals when < 5e-5):")
        for label, a, b in (
                ("RecBole Pop's own matrix: RecBole's evaluator vs reclight's metric function",
                 "Pop", "Pop, reclight's metric function on RecBole's own matrix"),
                ("tie-free training popularity: RecBole's pipeline vs reclight's core test phase",
                 "tie-free training popularity, RecBole's evaluator",
                 "tie-free training popularity, reclight's core test phase"),
                ("tie-free popularity: RecBole's evaluator vs its scores through recbole_scorer",
                 "tie-free training popularity, RecBole's evaluator",
                 "tie-free popularity from RecBole's model, reclight's metric function")):
            diffs = {t: abs(recbole[a][m] - recbole[b][m]) for m, t in METRICS}
            worst = max(diffs, key=diffs.__getitem__)
            print(f"- {label}: {diffs[worst]:.2e} ({worst}; "
                  f"{'agree' if diffs[worst] < 5e-5 else 'DIFFER'})")


# ---- tune -------------------------------------------------------------------------------------
def tune(args: argparse.Namespace) -> None:
    """Validation NDCG@10 at chosen epochs for a grid of settings (JSON list of dicts)."""
    dm = RatingDataModule(str(data_dir()), split=args.fold, val_size=0.2, seed=0)
    cls = model_class(args.model)
    grid = json.loads(args.grid)
    report = sorted(int(e) for e in args.epochs.split(","))
    print(f"validation carve of {args.fold}.base (20%, seed 0), NDCG@10 by epoch; load "
          f"{os.getloadavg()[0]:.1f}\n| settings | " + " | ".join(str(e) for e in report)
          + " | s |\n|---|" + "---|" * (len(report) + 1))
    for settings in grid:
        torch.manual_seed(0)
        batch = settings.pop("batch_size", None)
        model = cls(dm.training_data, **settings)
        dm.batch_size = batch or model.data_defaults.get("batch_size", dm.batch_size)
        dm.configure_for(model)
        optimizer = model.configure_optimizers()
        curve, start = [], time.perf_counter()
        for epoch in range(1, report[-1] + 1):
            model.train()
            dm.trainer = SimpleNamespace(current_epoch=epoch - 1)  # a fresh shuffle per epoch
            for batch_data in dm.train_dataloader():
                loss = model.training_loss(batch_data)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if epoch in report:
                model.eval()
                with torch.no_grad():
                    curve.append(metrics_of_scores(dm, dm.val, model.score_items)["ndcg"])
        shown = dict(settings, **({"batch_size": batch} if batch else {}))
        print(f"| {json.dumps(shown)} | " + " | ".join(f"{v:.4f}" for v in curve)
              + f" | {time.perf_counter() - start:.0f} |", flush=True)


# ---- test phase at scale, streamed recommend ---------------------------------------------------
def reclight_cli(argv: list[str]) -> tuple[float, int, str]:
    """Run ``reclight`` in a child process: (seconds, peak RSS bytes of the child, output)."""
    exe = Path(sys.executable).parent / "reclight"
    start = time.perf_counter()
    proc = subprocess.run([str(exe), *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if proc.returncode != 0:
        sys.exit(f"reclight {' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return seconds, peak, proc.stdout + proc.stderr


def fit_checkpoint(tmp: str, extra: list[str]) -> tuple[float, dict[str, Any]]:
    """``reclight fit --model mf`` on synthetic data, one epoch: (seconds, metrics.json)."""
    seconds, _, _ = reclight_cli(["fit", "--model", "mf", "--trainer.max_epochs", "1",
                                  "--trainer.default_root_dir", tmp, *extra])
    return seconds, json.loads(next(Path(tmp).rglob("metrics.json")).read_text())


def testone(args: argparse.Namespace) -> None:
    """The phases of ``reclight test --ckpt`` timed apart, in this process (a child of
    ``testphase``): rebuilding the data, the Trainer's test phase (the ranking), and the
    baseline's metrics on the same users that the command adds to its summary. Prints JSON."""
    from reclight.checkpoints import load_model, read_checkpoint

    model = load_model(args.ckpt)
    stored = dict(read_checkpoint(args.ckpt).get("datamodule_hyper_parameters") or {})
    start = time.perf_counter()
    dm = RatingDataModule(**stored)
    data_s = time.perf_counter() - start
    dm.set_eval_users(args.eval_users or None)
    trainer = user_trainer(type(model))
    with lightning_noise(False):
        start = time.perf_counter()
        trainer.test(model, datamodule=dm, verbose=False)
        test_s = time.perf_counter() - start
    users = int(trainer.callback_metrics["test_users"])
    start = time.perf_counter()
    baseline_metrics(model, dm)
    baseline_s = time.perf_counter() - start
    print(json.dumps({"data_s": data_s, "test_s": test_s, "baseline_s": baseline_s,
                      "users": users, "items": dm.num_items,
                      "eligible": (dm.ranking_sample or {}).get("eligible", users),
                      "ndcg": float(trainer.callback_metrics["test_ndcg@10"]),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def testphase(args: argparse.Namespace) -> None:
    """Test-phase seconds on synthetic ratings (``reclight fit --model mf`` for one epoch, then
    the phases of ``reclight test --ckpt`` timed apart in a child process): exact full ranking
    of every test user, and an ``--eval_users`` sample. A phase still running after
    ``--limit`` seconds is stopped and reported as such."""
    with tempfile.TemporaryDirectory() as tmp:
        fit_s, record = fit_checkpoint(tmp, ["--data.synthetic_ratings", str(args.ratings),
                                             "--eval_users", "1"])
        print(f"load average {os.getloadavg()[0]:.1f} (2 cores shared); fit command "
              f"(1 epoch, data included) {fit_s:.1f} s\n| ratings | items | test users ranked |"
              " data s | test phase s | baseline s | NDCG@10 | peak RSS |\n|---|---|---|---|---|"
              "---|---|---|", flush=True)
        modes = ([] if args.only_sample else [0]) + [args.eval_users]
        for eval_users in modes:
            cmd = [sys.executable, __file__, "testone", "--ckpt", record["checkpoint"],
                   "--eval_users", str(eval_users)]
            label = "every one" if not eval_users else f"--eval_users {eval_users:,}"
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.limit)
            except subprocess.TimeoutExpired:
                print(f"| {args.ratings:,} | - | {label} | - | stopped after {args.limit} s "
                      "(whole child) | - | - | - |", flush=True)
                continue
            if proc.returncode != 0:
                sys.exit(f"testone failed:\n{proc.stderr[-2000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            ranked = f"{r['users']:,} of {r['eligible']:,} ({label})"
            print(f"| {args.ratings:,} | {r['items']:,} | {ranked} | {r['data_s']:.1f} | "
                  f"{r['test_s']:.1f} | {r['baseline_s']:.1f} | {r['ndcg']:.4f} | "
                  f"{r['peak_rss_mib']:.0f} MiB |", flush=True)


def recommend(args: argparse.Namespace) -> None:
    """``reclight recommend --users all`` on a synthetic catalogue, time and peak memory (of
    the recommend process alone: the fit runs in an earlier child)."""
    with tempfile.TemporaryDirectory() as tmp:
        fit_s, record = fit_checkpoint(tmp, [
            "--data.synthetic_ratings", str(args.users * args.per_user),
            "--data.synthetic_users", str(args.users), "--data.synthetic_items", str(args.items),
            "--eval_users", "100"])
        out = Path(tmp) / "recs.parquet"
        code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        exe = str(Path(sys.executable).parent / "reclight")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, exe, "recommend", "--ckpt",
                               record["checkpoint"], "--users", "all", "-k", str(args.k),
                               "--output", str(out)], capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
        peak = int(proc.stdout.strip().splitlines()[-1]) * 1024
        import pyarrow.parquet as pq

        written = pq.ParquetFile(out).metadata.num_rows
        full = args.users * args.items * 4
        print(f"load average {os.getloadavg()[0]:.1f} (2 cores shared); fit command "
              f"{fit_s:.1f} s\n| users x items | k | rows written | seconds | peak RSS |"
              f" one dense float32 users x items |\n|---|---|---|---|---|---|\n| {args.users:,}"
              f" x {args.items:,} | {args.k} | {written:,} | {seconds:.1f} | "
              f"{peak / 2**20:.0f} MiB | {full / 2**20:,.0f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compare")
    p.add_argument("--fold", default="u1")
    p.add_argument("--models", default="", help="comma list of reclight rows (default: all)")
    p.add_argument("--recbole-epochs", type=int, default=300)
    p.add_argument("--recbole-models", default="Pop,CDAE,BPR")
    p.add_argument("--no-recbole", action="store_true")
    p.add_argument("--no-implicit", action="store_true", help="skip the implicit library's rows")
    p = sub.add_parser("tune")
    p.add_argument("--model", required=True)
    p.add_argument("--fold", default="u1")
    p.add_argument("--grid", default="[{}]", help="JSON list of hyper-parameter dicts")
    p.add_argument("--epochs", default="20,40,60")
    p = sub.add_parser("testphase")
    p.add_argument("--ratings", type=int, default=1_000_000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--eval_users", type=int, default=10_000)
    p.add_argument("--only-sample", action="store_true")
    p.add_argument("--limit", type=int, default=900, help="seconds before a phase is stopped")
    p = sub.add_parser("testone")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--eval_users", type=int, default=0, help="0: every test user")
    p = sub.add_parser("recommend")
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=50_000)
    p.add_argument("--per-user", type=int, default=10)
    p.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    {"compare": compare, "tune": tune, "testphase": testphase, "testone": testone,
     "recommend": recommend}[
        args.command](args)


if __name__ == "__main__":
    main()

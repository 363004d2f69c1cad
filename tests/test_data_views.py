"""Views: batch formats, epoch coverage, densified rows, SparseRows and DDP sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reclight.data import VIEWS, RatingDataModule, Ratings, SparseRows, make_synthetic
from reclight.data.views import (
    FIXED,
    ORDERED,
    MatrixBatches,
    PairBatches,
    RowBatches,
    TopNBatches,
    ViewContext,
    build_view,
    register_view,
)
from reclight.errors import DataError


@pytest.fixture(scope="module")
def dm() -> RatingDataModule:
    return RatingDataModule(make_synthetic(6000, seed=5), split="random", test_size=0.2,
                            batch_size=256, eval_batch_size=500, seed=3)


def _dense_reference(dm: RatingDataModule) -> torch.Tensor:
    full = torch.zeros(dm.num_users, dm.num_items)
    full[dm.train.users, dm.train.items] = dm.train.ratings
    return full


def _triples(batches) -> list[tuple[int, int, float]]:
    out = []
    for b in batches:
        out += list(zip(b["users"].tolist(), b["items"].tolist(), b["ratings"].tolist()))
    return out


# ---- SparseRows -----------------------------------------------------------------------------
def test_sparse_rows_from_unsorted_coo() -> None:
    rows, cols = torch.tensor([2, 0, 2, 1, 0]), torch.tensor([1, 3, 0, 2, 0])
    m = SparseRows.from_coo(rows, cols, torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), (4, 5))
    assert m.shape == (4, 5) and m.nnz == 5
    assert m.indptr.tolist() == [0, 2, 3, 5, 5] and m.indices.tolist() == [0, 3, 2, 0, 1]
    assert m.row_lengths().tolist() == [2, 1, 2, 0]
    values, mask = m.dense(torch.tensor([2, 3, 0, 2]))
    expected = torch.tensor([[3.0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [5, 0, 0, 2, 0], [3, 1, 0, 0, 0]])
    assert torch.equal(values, expected) and torch.equal(mask, expected != 0)
    assert values.dtype == torch.float32 and mask.dtype == torch.bool
    t = m.transpose()
    assert t.shape == (5, 4)
    assert torch.equal(t.dense(torch.arange(5))[0], m.dense(torch.arange(4))[0].T)
    again = SparseRows.from_state(m.state_dict())
    assert torch.equal(again.dense(torch.arange(4))[0], m.dense(torch.arange(4))[0])
    assert m.dense(torch.zeros(0, dtype=torch.long))[0].shape == (0, 5)


def test_sparse_rows_dense_matches_reference(dm) -> None:
    full = _dense_reference(dm)
    rows = torch.randperm(dm.num_users)[:97]
    values, mask = dm.train_rows.dense(rows)
    assert torch.equal(values, full[rows])
    assert torch.equal(mask, full[rows] != 0)  # synthetic ratings are never 0
    assert dm.train_rows.nnz == len(dm.train)


# ---- training views -------------------------------------------------------------------------
def test_pairs_cover_each_rating_once_per_epoch(dm) -> None:
    dm.set_view("pairs")
    loader = dm.train_dataloader()
    reference = sorted(zip(dm.train.users.tolist(), dm.train.items.tolist(),
                           dm.train.ratings.tolist()))
    epochs = []
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader) == -(-len(dm.train) // 256)
        assert all(b["users"].dtype == torch.int64 and b["ratings"].dtype == torch.float32
                   for b in batches)
        assert all(len(b["users"]) == 256 for b in batches[:-1])
        got = _triples(batches)
        assert sorted(got) == reference
        epochs.append(got)
    assert epochs[0] != epochs[1]  # reshuffled each epoch
    assert _triples(dm.train_dataloader()) == epochs[0]  # same seed, same first epoch


@pytest.mark.parametrize("view", ["user_rows", "implicit_user_rows", "item_rows"])
def test_row_views_densify_training_rows(dm, view) -> None:
    dm.set_view(view)
    full = _dense_reference(dm)
    if view == "item_rows":
        full = full.T
    seen = []
    for batch in dm.train_dataloader():
        rows = batch["rows"]
        assert batch["values"].shape == (len(rows), full.shape[1])
        assert batch["mask"].dtype == torch.bool
        expected = (full[rows] != 0).float() if view == "implicit_user_rows" else full[rows]
        assert torch.equal(batch["values"], expected)
        assert torch.equal(batch["mask"], full[rows] != 0)
        seen += rows.tolist()
    assert sorted(seen) == list(range(full.shape[0]))


def test_matrix_view_is_one_batch_in_both_layouts(dm) -> None:
    dm.set_view("matrix")
    loader = dm.train_dataloader()
    (batch,) = list(loader)
    assert len(loader) == 1
    got = sorted(zip(batch["users"].tolist(), batch["items"].tolist(), batch["ratings"].tolist()))
    assert got == sorted(zip(dm.train.users.tolist(), dm.train.items.tolist(),
                             dm.train.ratings.tolist()))
    full = _dense_reference(dm)
    assert torch.equal(batch["user_major"].dense(torch.arange(dm.num_users))[0], full)
    assert torch.equal(batch["item_major"].dense(torch.arange(dm.num_items))[0], full.T)
    assert batch["item_major"] is dm.item_rows  # built once, not re-sorted per epoch
    assert torch.equal(batch["shard_users"], torch.arange(dm.num_users))
    dm.set_view("pairs")


def test_a_plugin_registers_its_own_view() -> None:
    calls = []

    def popular_pairs(ctx: ViewContext) -> list[dict]:
        """Pairs of the most rated item only (a toy plugin view)."""
        calls.append(ctx.options)
        top = int(torch.argmax(ctx.data.item_counts))
        keep = ctx.train.items == top
        return [{"users": ctx.train.users[keep], "items": ctx.train.items[keep]}]

    register_view("toy_popular_pairs", popular_pairs, keys={"users": "int64", "items": "int64"})
    try:
        assert "toy_popular_pairs" in VIEWS
        assert VIEWS["toy_popular_pairs"].description.startswith("Pairs of the most rated")
        register_view("toy_popular_pairs", popular_pairs)  # a re-import is harmless
        with pytest.raises(DataError, match="registered twice"):
            register_view("toy_popular_pairs", lambda ctx: [])
        dm = RatingDataModule(make_synthetic(2000, seed=4), split="none")
        dm.set_view("toy_popular_pairs", {"k": 3})
        (batch,) = list(dm.train_dataloader())
        assert calls == [{"k": 3}] and len(set(batch["items"].tolist())) == 1
    finally:
        VIEWS.pop("toy_popular_pairs", None)


# ---- evaluation views -----------------------------------------------------------------------
def test_test_loaders_pairs_and_topn() -> None:
    frame = make_synthetic(3000, seed=9)
    dm = RatingDataModule(frame, split="random", test_size=0.3, eval_batch_size=128, seed=1,
                          min_user_ratings=0)
    pairs, topn = dm.test_dataloader()
    got = _triples(pairs)
    assert got == list(zip(dm.test.users.tolist(), dm.test.items.tolist(),
                           dm.test.ratings.tolist()))  # in order, unseen (-1) included
    known = dm.test.known()
    expected = torch.zeros(dm.num_users, dm.num_items, dtype=torch.bool)
    expected[dm.test.users[known], dm.test.items[known]] = True
    users = []
    for batch in topn:
        assert set(batch) == {"users", "targets"}
        assert torch.equal(batch["targets"], expected[batch["users"]])
        assert batch["targets"].any(dim=1).all()
        users += batch["users"].tolist()
    assert sorted(users) == sorted(set(dm.test.users[known].tolist()))
    assert _triples(dm.predict_dataloader()[0]) == got


class _Declares:
    """What the DataModule reads from the Trainer's model: its view and feedback kind."""

    def __init__(self, data, input_kind: str, feedback: str, view_options=None) -> None:
        self.data, self.input_kind, self.feedback = data, input_kind, feedback
        self.view_options = view_options or {}


class _Trainer:
    global_rank, world_size, current_epoch = 0, 1, 0

    def __init__(self, module) -> None:
        self.lightning_module = module


@pytest.mark.parametrize("feedback", ["explicit", "implicit"])
def test_the_models_declarations_choose_the_batches(feedback) -> None:
    dm = RatingDataModule(make_synthetic(3000, seed=9), test_size=0.3, val_size=0.1, seed=1)
    dm.trainer = _Trainer(_Declares(dm.training_data, "item_rows", feedback, {"fixed_shards": True}))
    try:
        dm.setup("fit")
        assert (dm.view, dm.view_options, dm.feedback) == ("item_rows", {"fixed_shards": True}, feedback)
        assert next(iter(dm.train_dataloader()))["values"].shape[1] == dm.num_users
        val, test = dm.val_dataloader(), dm.test_dataloader()
        kinds = [set(next(iter(loader))) for loader in val], [set(next(iter(loader))) for loader in test]
        pairs, ranking = {"users", "items", "ratings"}, {"users", "targets"}
        if feedback == "explicit":  # rating errors on validation, both kinds on test
            assert kinds == ([pairs], [pairs, ranking])
        else:  # scores are not ratings: rankings only
            assert kinds == ([ranking], [ranking])
    finally:
        dm.trainer = None


def test_a_model_built_for_other_data_is_refused() -> None:
    dm = RatingDataModule(make_synthetic(3000, seed=9), seed=1)
    other = RatingDataModule(make_synthetic(20000, seed=9), seed=1)
    dm.trainer = _Trainer(_Declares(other.training_data, "pairs", "explicit"))
    try:
        with pytest.raises(DataError, match="the model was built for .* other ids"):
            dm.setup("fit")
    finally:
        dm.trainer = None


def test_unseen_pairs_are_kept_in_evaluation() -> None:
    ratings = Ratings(torch.tensor([0, -1, 2]), torch.tensor([-1, 1, 2]), torch.tensor([1.0, 2, 3]))
    batches = list(PairBatches(ratings, 2, sharding=ORDERED))
    assert _triples(batches) == [(0, -1, 1.0), (-1, 1, 2.0), (2, 2, 3.0)]


def test_empty_validation_loader(dm) -> None:
    assert dm.val_dataloader() == []


# ---- DDP sharding ---------------------------------------------------------------------------
@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_training_shards_have_equal_batches_and_disjoint_ratings(world_size) -> None:
    ratings = Ratings(torch.arange(1001), torch.arange(1001), torch.ones(1001))
    shards = [PairBatches(ratings, 64, seed=4, rank=r, world_size=world_size)
              for r in range(world_size)]
    for _ in range(2):  # two epochs, reshuffled
        batches = [list(s) for s in shards]
        assert len({len(b) for b in batches}) == 1
        assert all(len(b) == len(s) for b, s in zip(batches, shards))
        ids = [u for b in batches for batch in b for u in batch["users"].tolist()]
        assert len(ids) == len(set(ids)) == 1001 // world_size * world_size
    rows = [RowBatches(SparseRows.from_coo(torch.arange(10), torch.arange(10), torch.ones(10),
                                           (10, 10)), torch.arange(10), 3,
                       rank=r, world_size=world_size) for r in range(world_size)]
    assert len({len(list(r)) for r in rows}) == 1


@pytest.mark.parametrize("n, world_size, batch_size", [(1001, 2, 64), (10, 3, 3), (7, 2, 5), (6, 4, 1)])
def test_fixed_shards_keep_each_rank_on_its_items_with_equal_steps(n, world_size, batch_size) -> None:
    ratings = Ratings(torch.arange(n), torch.arange(n), torch.ones(n))
    shards = [PairBatches(ratings, batch_size, sharding=FIXED, seed=2, rank=r, world_size=world_size)
              for r in range(world_size)]
    epochs = []
    for _ in range(2):
        batches = [list(s) for s in shards]
        assert len({len(b) for b in batches}) == 1 and len(batches[0]) == len(shards[0])
        largest = -(-n // world_size)
        assert all(0 < len(b["users"]) <= -(-largest // len(shards[0])) for bs in batches for b in bs)
        assert len(shards[0]) == -(-(n // world_size) // batch_size)
        per_rank = [sorted(u for b in bs for u in b["users"].tolist()) for bs in batches]
        assert sorted(u for r in per_rank for u in r) == list(range(n))  # nothing skipped
        for rank, users in enumerate(per_rank):  # the same contiguous shard every epoch
            start, stop = n * rank // world_size, n * (rank + 1) // world_size
            assert users == list(range(start, stop))
        epochs.append([u for b in batches[0] for u in b["users"].tolist()])
    if n // world_size > 2:
        assert epochs[0] != epochs[1]  # reshuffled within the shard


@pytest.mark.parametrize("world_size", [2, 3, 7])
def test_evaluation_shards_partition_exactly(world_size) -> None:
    n = 1000
    ratings = Ratings(torch.arange(n), torch.arange(n), torch.arange(n, dtype=torch.float32))
    got = []
    for rank in range(world_size):
        ds = PairBatches(ratings, 33, sharding=ORDERED, rank=rank, world_size=world_size)
        batches = list(ds)
        assert len(batches) == len(ds)
        got += [u for b in batches for u in b["users"].tolist()]
    assert got == list(range(n))  # no padding, no duplicates, nothing lost
    targets = SparseRows.from_coo(torch.arange(50), torch.arange(50) % 7, torch.ones(50), (50, 7))
    users = []
    for rank in range(world_size):
        users += [u for b in TopNBatches(targets, torch.arange(50), 8, rank=rank,
                                         world_size=world_size) for u in b["users"].tolist()]
    assert users == list(range(50))


def test_datamodule_shards_follow_setup_rank(dm) -> None:
    class FakeTrainer:
        global_rank, world_size, current_epoch = 1, 2, 0

    dm.trainer = FakeTrainer()  # what Lightning sets before calling setup()
    try:
        dm.setup("fit")
        dm.setup("fit")  # idempotent
        assert (dm.rank, dm.world_size) == (1, 2)
        dm.set_view("pairs")
        assert len(dm.train_dataloader()) == -(-(len(dm.train) // 2) // 256)
        pairs, _ = dm.test_dataloader()
        assert sum(len(b["users"]) for b in pairs) == len(dm.test) - len(dm.test) // 2
    finally:
        dm.trainer = None
        dm.rank, dm.world_size = 0, 1


def test_matrix_shards_are_contiguous_ranges() -> None:
    dm = RatingDataModule(make_synthetic(500, seed=3), split="none")
    shards = [next(iter(MatrixBatches(dm.training_data, rank=r, world_size=3))) for r in range(3)]
    users = [s["shard_users"].tolist() for s in shards]
    assert [u for part in users for u in part] == list(range(dm.num_users))
    assert all(part == list(range(part[0], part[-1] + 1)) for part in users)
    assert all(len(s["users"]) == len(dm.train) for s in shards)  # every rank sees every rating


def test_dataloader_uses_trainer_epoch() -> None:
    dm = RatingDataModule(make_synthetic(2000, seed=1), batch_size=2000, seed=0)
    first = next(iter(dm.train_dataloader()))["users"]

    class Resumed:
        global_rank, world_size, current_epoch = 0, 1, 1

    dm.trainer = Resumed()
    resumed = next(iter(dm.train_dataloader()))["users"]
    dm.trainer = None
    loader = dm.train_dataloader()
    next(iter(loader))
    assert torch.equal(next(iter(loader))["users"], resumed)  # epoch 1 either way
    assert not torch.equal(first, resumed)
    assert np.array_equal(np.sort(first.numpy()), np.sort(resumed.numpy()))


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no `validation_step`")
@pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\)")
def test_each_epoch_of_a_fit_gets_its_own_permutation_in_order() -> None:
    """Lightning calls iter() once on a loader that is not a DataLoader to check it; that must
    not use up epoch 0's permutation (the figures of seeded runs depend on it)."""
    import lightning as L

    dm = RatingDataModule(make_synthetic(2000, seed=1), batch_size=300, seed=0)
    expected = [next(iter(PairBatches(dm.train, 300, seed=0)))["users"][:5].tolist()]
    later = PairBatches(dm.train, 300, seed=0)
    later.set_epoch(1)
    expected.append(next(iter(later))["users"][:5].tolist())

    class Probe(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.first: list[list[int]] = []

        def training_step(self, batch, batch_idx):
            if batch_idx == 0:
                self.first.append(batch["users"][:5].tolist())
            return (self.w * batch["ratings"]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    probe = Probe()
    L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(probe, datamodule=dm)
    assert probe.first == expected

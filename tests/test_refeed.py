"""Dense re-feeding (reclight.refeed) on the training-step hook point, with a tiny row model."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from reclight.autoencoder import RowAutoencoderModel, activation, check_dropout, parse_layers
from reclight.data import RatingDataModule
from reclight.errors import ConfigError
from reclight.refeed import DenseRefeeding
from reclight.testing import low_rank_ratings, quiet_trainer


class TinyAutoencoder(RowAutoencoderModel):
    """A one-layer row autoencoder for the core's tests (AutoRec's shape, Sedhain et al. 2015)."""

    input_kind: ClassVar[str] = "user_rows"

    def __init__(self, data: Any, variant: str = "user", refeed_steps: int = 0,
                 refeed_dropout: float = 0.0) -> None:
        super().__init__(data, variant=variant, refeed_steps=refeed_steps,
                         refeed_dropout=refeed_dropout)
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(self.row_width, 8), nn.Sigmoid(), nn.Linear(8, self.row_width))

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=0.01)


def fitted(refeed_steps: int, variant: str = "user", **kwargs: Any) -> tuple[TinyAutoencoder, Any]:
    dm = RatingDataModule(source=low_rank_ratings(), test_size=0.2, batch_size=16)
    torch.manual_seed(0)
    model = TinyAutoencoder(dm.training_data, variant=variant, refeed_steps=refeed_steps, **kwargs)
    trainer = quiet_trainer(max_epochs=2)
    trainer.fit(model, datamodule=dm)
    return model, trainer


def test_refeeding_takes_real_extra_optimiser_steps_and_changes_the_weights() -> None:
    plain, t0 = fitted(0)
    refed, t1 = fitted(1)
    twice, t2 = fitted(2, refeed_dropout=0.5)
    assert t1.global_step == 2 * t0.global_step
    assert t2.global_step == 3 * t0.global_step
    assert not torch.allclose(plain.net[0].weight, refed.net[0].weight)
    assert refed.step_hooks[0].calls == t0.global_step
    assert (plain.training_kind, refed.training_kind) == ("gradient", "manual")


def test_refeeding_targets_the_detached_dense_output() -> None:
    dm = RatingDataModule(source=low_rank_ratings(), test_size=0.2, batch_size=16)
    model = TinyAutoencoder(dm.training_data)
    dm.configure_for(model)
    seen: list[torch.Tensor] = []

    def fake_step(loss_fn: Any) -> torch.Tensor:
        loss = loss_fn()
        seen.append(loss)
        return loss.detach()

    model.optimization_step = fake_step  # type: ignore[method-assign]
    batch = next(iter(dm.train_dataloader()))
    DenseRefeeding(steps=1).after_step(model, batch, torch.tensor(0.0))
    with torch.no_grad():
        dense = model.reconstruct(model.row_input(batch))
        expected = torch.mean((model.reconstruct(dense) - dense) ** 2)
    torch.testing.assert_close(seen[0].detach(), expected)


def test_item_variant_reads_the_transposed_matrix_and_predicts_held_out_pairs() -> None:
    model, _ = fitted(1, variant="item")
    assert model.input_kind == "item_rows" and model.row_width == model.num_users
    users, items = torch.tensor([0, 1, 2]), torch.tensor([3, 3, 0])
    with torch.no_grad():
        pred = model.predict_ratings(users, items)
        scores = model.score_items(users)
    torch.testing.assert_close(scores[[0, 1, 2], [3, 3, 0]], pred)


@pytest.mark.parametrize("call, fragment", [
    (lambda: DenseRefeeding(steps=-1), "refeed_steps=-1 must be an integer >= 0"),
    (lambda: DenseRefeeding(steps=1, dropout=1.0), r"refeed_dropout=1.0 must be in \[0, 1\)"),
    (lambda: parse_layers(""), "hidden layer list is empty"),
    (lambda: parse_layers([]), "hidden layer list is empty"),
    (lambda: parse_layers("512,x"), "must be integers"),
    (lambda: check_dropout(-0.1), r"dropout=-0.1 must be in \[0, 1\)"),
    (lambda: activation("gelu"), "unknown activation 'gelu'.*selu, elu, lrelu, relu, relu6, sigmoid, tanh, swish"),
    (lambda: TinyAutoencoder(RatingDataModule(low_rank_ratings()).training_data, variant="both"),
     "unknown variant 'both'"),
])
def test_bad_settings_are_one_line_config_errors(call: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        call()
    assert "\n" not in str(info.value)


def test_layer_lists_parse_from_strings_and_lists() -> None:
    assert parse_layers("512,512,1024") == parse_layers("[512, 512, 1024]") == [512, 512, 1024]
    assert parse_layers([8, 4]) == [8, 4] and parse_layers(16) == [16]

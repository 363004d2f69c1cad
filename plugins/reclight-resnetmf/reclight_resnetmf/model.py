"""``mlp-mf`` and ``resnet-mf``: matrix factorisation whose dot product sees each side's
embedding through a small network.

After the MovieLens matrix-factorisation tutorials that set linear MF trained with Adam beside
an MLP and a residual network. The networks are the MLP towers of neural collaborative
filtering (He, Liao, Zhang, Nie, Hu and Chua, "Neural Collaborative Filtering", WWW 2017) and
the residual blocks of He, Zhang, Ren and Sun ("Deep Residual Learning for Image Recognition",
CVPR 2016), on the biased MF prediction rule of Koren, Bell and Volinsky (IEEE Computer, 2009):

    r_hat(u, i) = mu + b_u + b_i + f(p_u) . g(q_i)

Everything but the towers is ``mf``'s: the embedding tables and biases
(``reclight_mf.network.BiasedMF``), the loss (masked MSE on the observed ratings of a ``pairs``
batch plus the frequency-weighted L2 penalty on the rows it touches), the optimisers and the
learning-rate schedules (``reclight_mf.model.MatrixFactorization``). The towers' weights get
Adam's L2 weight decay ``tower_decay``. Defaults were chosen on validation carves of the
MovieLens 100K training folds (see the plugin README).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from reclight.data.training import TrainingData
from reclight.errors import ConfigError
from reclight_mf.model import MatrixFactorization
from reclight_mf.network import BiasedMF
from reclight_resnetmf.network import MLPTower, ResidualTower

Data = TrainingData | Mapping[str, Any]


class TowerMF(MatrixFactorization):
    """Biased MF with a tower per side (the shared part of ``mlp-mf`` and ``resnet-mf``)."""

    # SparseAdam takes sparse gradients only, and the towers' are dense.
    optimizers: ClassVar[tuple[str, ...]] = ("adam", "sgd")
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 50}
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 1 << 20}
    # The towers run on at most num_users + num_items rows per step (small products). As for
    # mf, one thread: on the shared 2-core box a second one made gathers of 8192 rows tens of
    # times slower (threads waiting for a core), see the plugin README.
    cpu_threads: ClassVar[int | None] = 1
    # Dense embeddings, linear layers and Adam/SGD all have bf16 kernels on CPU and CUDA, so the
    # weights themselves may be bf16 (the contract kit trains under every declared "-true").
    precisions: ClassVar[tuple[str, ...]] = (*MatrixFactorization.precisions, "bf16-true")

    def make_towers(self) -> tuple[nn.Module, nn.Module]:
        """A user tower and an item tower (read ``self.hparams``)."""
        raise NotImplementedError

    def nonnegative_embeddings(self) -> bool:
        """Whether the embeddings start non-negative (towers that begin with a ReLU)."""
        return False

    def build_network(self, dim: int, init_std: float, sparse: bool) -> BiasedMF:
        hp = self.hparams
        if hp.hidden < 1 or hp.tower_decay < 0:
            raise ConfigError(f"{self.label} needs hidden >= 1 and tower_decay >= 0; got "
                              f"hidden={hp.hidden}, tower_decay={hp.tower_decay}")
        net = BiasedMF(self.num_users, self.num_items, dim, init_std, sparse=sparse,
                       towers=self.make_towers(), biases=hp.biases,
                       penalise_outputs=hp.get("penalise_outputs", False))
        if self.nonnegative_embeddings():
            # A tower that starts with a ReLU passes no gradient to an embedding's negative
            # coordinates: drawn N(0, s), half of every row would be dead from the first
            # step (and stay dead, as nothing else moves them when the penalty acts on the
            # towers' outputs). |N(0, s)| starts every coordinate on the live side.
            with torch.no_grad():
                for table in (net.users, net.items):
                    table.weight[:, :dim].abs_()
        return net

    def parameter_groups(self) -> list[dict[str, Any]]:
        tables = [self.net.users.weight, self.net.items.weight]
        towers = [*self.net.user_tower.parameters(), *self.net.item_tower.parameters()]
        tower_group = {"params": towers, "weight_decay": self.hparams.tower_decay}
        if self.hparams.get("tower_lr") is not None:
            tower_group["lr"] = self.hparams.tower_lr
        return [{"params": tables}, tower_group]


class MLPMF(TowerMF):
    """MF with an MLP tower per side: f(p) = W relu(p) + c (He et al. 2017's MLP towers).

    Args:
        data: the training data (filled in by the CLI).
        dim: embedding size.
        hidden: output size of each tower (the length of the vectors in the dot product).
        tower_decay: Adam's L2 weight decay on the towers' parameters.
        tower_lr: the towers' learning rate (None: ``lr``); the tables learn at ``lr``.
        penalise_outputs: the L2 penalty ``reg`` acts on the towers' outputs, the vectors
            in the dot product, instead of on the embeddings.
        biases: add the global mean and user/item biases to the dot product; False gives the
            plain dot product of the tutorials.
        nonnegative_init: draw the embeddings from |N(0, init_std)| instead of N(0, init_std):
            the ReLU passes no gradient to a negative coordinate, so a signed start leaves
            half of every embedding dead from the first step.
        reg, bias_reg, lr, optimizer, init_std, lr_schedule, lr_decay, frequency_exponent: as
            for ``mf`` (``optimizer`` is "adam" or "sgd").
    """

    label: ClassVar[str] = "mlp-mf"

    def __init__(self, data: Data, dim: int = 64, hidden: int = 64, tower_decay: float = 0.0,
                 tower_lr: float | None = 0.003, biases: bool = True,
                 penalise_outputs: bool = True, reg: float = 0.12,
                 bias_reg: float = 0.1, lr: float = 0.1,
                 optimizer: str = "adam", init_std: float = 0.2, lr_schedule: str = "constant",
                 lr_decay: float = 1.0, frequency_exponent: float = 0.5,
                 nonnegative_init: bool = True) -> None:
        super().__init__(data, dim=dim, reg=reg, bias_reg=bias_reg, lr=lr, optimizer=optimizer,
                         init_std=init_std, lr_schedule=lr_schedule, lr_decay=lr_decay,
                         frequency_exponent=frequency_exponent)

    def make_towers(self) -> tuple[nn.Module, nn.Module]:
        hp = self.hparams
        return MLPTower(hp.dim, hp.hidden), MLPTower(hp.dim, hp.hidden)

    def nonnegative_embeddings(self) -> bool:
        return bool(self.hparams.get("nonnegative_init", True))


class ResNetMF(TowerMF):
    """MF with residual towers: each side's embedding through ``blocks`` blocks
    h <- h + FC(dropout(relu(FC(h)))) (He et al. 2016), then the dot product.

    Args:
        data: the training data (filled in by the CLI).
        dim: embedding size (and the towers' output size: the blocks are residual).
        hidden: width of each block's inner layer.
        dropout: dropout probability inside each block (training only).
        blocks: residual blocks per tower.
        tower_decay: Adam's L2 weight decay on the towers' parameters.
        tower_lr: the towers' learning rate (None: ``lr``); the tables learn at ``lr``.
        penalise_outputs: the L2 penalty ``reg`` acts on the towers' outputs, the vectors
            in the dot product, instead of on the embeddings.
        biases: add the global mean and user/item biases to the dot product.
        reg, bias_reg, lr, optimizer, init_std, lr_schedule, lr_decay, frequency_exponent: as
            for ``mf`` (``optimizer`` is "adam" or "sgd").
    """

    label: ClassVar[str] = "resnet-mf"

    def __init__(self, data: Data, dim: int = 64, hidden: int = 64, dropout: float = 0.5,
                 blocks: int = 2, tower_decay: float = 0.0, tower_lr: float | None = 0.005,
                 biases: bool = True, penalise_outputs: bool = True, reg: float = 0.15, bias_reg: float = 0.1,
                 lr: float = 0.05,
                 optimizer: str = "adam", init_std: float = 0.1, lr_schedule: str = "constant",
                 lr_decay: float = 1.0, frequency_exponent: float = 0.5) -> None:
        if not 0 <= dropout < 1 or blocks < 1:
            raise ConfigError(f"resnet-mf needs 0 <= dropout < 1 and blocks >= 1; got "
                              f"dropout={dropout}, blocks={blocks}")
        super().__init__(data, dim=dim, reg=reg, bias_reg=bias_reg, lr=lr, optimizer=optimizer,
                         init_std=init_std, lr_schedule=lr_schedule, lr_decay=lr_decay,
                         frequency_exponent=frequency_exponent)

    def make_towers(self) -> tuple[nn.Module, nn.Module]:
        hp = self.hparams
        return (ResidualTower(hp.dim, hp.hidden, hp.dropout, hp.blocks),
                ResidualTower(hp.dim, hp.hidden, hp.dropout, hp.blocks))

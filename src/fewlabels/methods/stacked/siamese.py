"""N seeds of seed 000's first stage, ``siamese-pairs``, trained together (the many-runs-per-process path
of ``fewlabels.methods.stacked``; ``nets``).

The runs' Siamese nets (the tower with batch norm and dropout, and the pair head) are stacked; each
step is one ``vmap`` over the runs of the pair loss and one step of the mirrored Adam. Each run draws
its pairs from its own ``PairSampler`` and batch generator, and its dropout masks from a generator that
carries its global RNG state, in the one-run path's order, so on the CPU every run sees what it sees
alone. The nearest-class-mean readout is set by each run's own epoch-end hook, on the unstacked runs.
"""

from __future__ import annotations

import torch
from torch.func import vmap

from ..siamese import SiamesePairs, pair_loss
from .common import DropoutMasks, dropout_mask
from .nets import StackedNets, gather


class StackedSiamesePairs(StackedNets):
    """N runs of ``siamese-pairs`` with the same hyperparameters."""

    METHOD = SiamesePairs

    def __init__(self, runs, capturable: bool = False):
        super().__init__(runs, capturable=capturable)
        self.drops = DropoutMasks(self.templates["net"])

    def train_step(self) -> dict[str, torch.Tensor]:
        n, width = self.hp["batch_size"], self.methods[0].data.x_pool.shape[1]
        net = self.fn("net")
        template = self.templates["net"]

        def draws(m, g):
            a, b, same = m.sampler(n, m.gen)
            # the global generator's draws: the tower's dropout on both halves in one pass
            masks = self.draw_injected(self.drops, lambda x: template(x, x), (n, width), g, dropout_mask)
            return (a, b, same, *masks)

        a, b, same, *masks = self.per_run(draws)
        pool = self.data("x_pool")
        use = self.drops.use

        def loss(p, buf, xa, xb, same, masks):
            with use(masks):
                return pair_loss(net(p, buf, xa, xb), same)

        losses = vmap(loss)(self.params["net"], self.buffers["net"], gather(pool, a), gather(pool, b), same, masks)
        return {"pair": self.step("opt", losses)}

"""What the tables, the summaries and the figures share about methods, without matplotlib: the order
and the autoencoder families (from the registry, ``fewlabels.methods``) and which methods used labels
beyond their budget (``beyond_budget``). ``figures.common`` re-exports these for the figure families.
"""

from __future__ import annotations

import pandas as pd

from ..methods import family, method_order

# One colour and marker per method, in this order, so every figure and table reads the same way.
METHOD_ORDER = method_order()
# Seed 003's autoencoder families: drawn in their own figure (figures.ae), not in fig_accuracy.
AE_METHODS = family("ae")

# Methods whose first stage uses labels beyond the budget: seed 000's pair stage makes its
# same/different targets from the pool's labels. They have their own figure (fig_siamese).
OWN_FIGURE = {"siamese"}


def beyond_budget(df: pd.DataFrame) -> set[str]:
    """Methods with a run that used more labels (of any kind) than its budget, by ``labels_used``,
    plus OWN_FIGURE (runs made before the count was recorded carry no ``labels_used``)."""
    over = set(OWN_FIGURE)
    if "labels_used" in df.columns:
        over |= set(df[df["labels_used"].notna() & (df["labels_used"] > df["labels"])]["method"])
    return over

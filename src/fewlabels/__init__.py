"""fewlabels: a reproducible replication study of learning MNIST from few labels."""

__version__ = "0.1.0"

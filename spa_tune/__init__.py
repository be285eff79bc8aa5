"""spa-tune: block-structured pruning experiments for BERT on SQuAD, scheduled with Ray Tune."""

__version__ = "0.1.0"

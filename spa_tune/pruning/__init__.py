"""Block-structured pruning: binarizers, masked layers, threshold schedule, regularization."""

"""SQuAD v1.1 data: JSON files, a generated toy set, loading, windowed features, post-processing, metric."""

"""From a checked space to Ray Tune: parameter space, searcher and (stratified) ASHA scheduler."""

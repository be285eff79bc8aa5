"""MLflow: the parent and trial runs of an experiment, their artifact store, and a queue that survives an unreachable server."""

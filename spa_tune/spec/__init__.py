"""Space files: the schema, loading with overrides, and every check made before cluster work starts."""

"""Export trained trials: plain Hugging Face models (masks folded, heads and neurons removed) and SPLoPA adapters."""

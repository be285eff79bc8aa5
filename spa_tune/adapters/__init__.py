"""Adapters injected into the encoder's Linear layers, one folder per method."""

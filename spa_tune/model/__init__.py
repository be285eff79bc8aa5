"""Load BERT-family QA models, inject masked layers or adapters, count weights."""

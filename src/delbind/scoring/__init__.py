"""Scoring molecule files with a trained arm: readers (chunks of any file), scorers (an arm as SMILES -> P(binder)),
parts (resumable output)."""

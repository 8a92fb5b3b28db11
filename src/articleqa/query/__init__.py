"""Question -> answer: retrieval (retrieve.py), the answer (answer/), and measuring them (evaluate.py)."""

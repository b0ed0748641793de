"""Training of the served models on the generated data (CPU, minutes each)."""

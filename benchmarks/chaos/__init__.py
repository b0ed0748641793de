"""Chaos benchmark: open-loop Chat load while the embedded tritonserver is SIGKILLed (``benchmarks.chaos.run``)."""

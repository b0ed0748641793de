"""The local LLM tier's generator measured in-process (``python -m benchmarks.llm.generate``)."""

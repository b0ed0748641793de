"""pytest-benchmark micro-benchmarks of the request path's hot pure-Python pieces (``hot_paths.py``):
``pytest benchmarks/micro --benchmark-only``. Timings are reported, never asserted."""

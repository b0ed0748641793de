"""MangaAssist benchmarks: perf_analyzer sweeps of the Triton models (``benchmarks.perf_analyzer``) and the
ensemble service's overhead and open-loop load (``benchmarks.service``). See ``benchmarks/README.md``."""

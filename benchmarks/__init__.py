"""Scripts that measure speed and memory; each writes benchmarks/results/<name>.json and .md."""

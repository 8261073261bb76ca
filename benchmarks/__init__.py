"""obcore benchmarks: data-structure variants and peer libraries on Bybit v5 orderbook streams.

Run ``python -m benchmarks --help`` for the comparison runner, or ``pytest benchmarks/`` for the
pytest-benchmark suite. See benchmarks/README.md.
"""

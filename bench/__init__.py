"""Benchmark of the button pipeline against a broker-less baseline (`python -m bench`).

See `bench.__main__` for what is measured and how.
"""

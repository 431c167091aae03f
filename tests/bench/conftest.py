"""The benchmark is run by `make bench`, never collected by pytest (tests/test_bench_smoke.py smokes it)."""
collect_ignore_glob = ["*.py"]

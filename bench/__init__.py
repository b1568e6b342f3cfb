"""Benchmarks (``make bench``): each ``bench/bench_*.py`` has ``main()`` printing figures.

They measure and print; they never assert timings (see tests/ for behaviour).
"""

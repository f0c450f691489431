"""seeds.py - the functions of pexec's seed posts, unchanged, as pexec's
python plugin runs them (examples/python/README.md).

Nothing here knows about pexec: these are plain functions of one item,
which pexec imports once, before it forks its workers.
"""


def factorial(n):
    """Seed 001: the recursive factorial, on Python's exact ints."""
    if n == 0:
        return 1
    else:
        return n * factorial(n - 1)


def some_function(x, y, z):
    """Seed 002: a function of several inputs; x is what is parallelized
    over, y and z are fixed.  It has nothing to say about some x (None),
    which easy_parallelize drops."""
    # complicated computation
    if x % 7 == 0:
        return None
    return x + y + z

"""with_pool.py - the seeds' programs as their posts wrote them, with
multiprocessing.Pool.map: what examples/python/run.sh runs beside pexec.

    python3 with_pool.py sleep-lambda              seed 003: PicklingError
    python3 with_pool.py factorial IN.json OUT.json   seed 001
    python3 with_pool.py easy IN.json OUT.json        seed 002

Each reads its items from a JSON file and writes its results as JSON, so
that run.sh can compare them with pexec's.
"""
import json
import sys
import time
from functools import partial
from multiprocessing import Pool

from seeds import factorial, some_function


# Seed 003's lambda, at the top level as in the post's notebook.
sleeping = lambda x: time.sleep(0.1)  # noqa: E731


def sleep_lambda():
    """Seed 003: a lambda cannot be pickled, so Pool.map cannot send it."""
    with Pool(8) as pool:
        try:
            pool.map(sleeping, range(24))
        except Exception as e:  # PicklingError (its class moved between versions)
            print(f"{type(e).__name__}: {e}")
            return 1
    return 0


def easy_parallize(f, sequence):
    """Seed 002's helper, as the post wrote it (less numpy's asarray)."""
    pool = Pool(processes=8)
    # f is given sequence. guaranteed to be in order
    result = pool.map(f, sequence)
    cleaned = [x for x in result if not x is None]
    # not optimal but safe
    pool.close()
    pool.join()
    return cleaned


def main(argv):
    if argv[1] == "sleep-lambda":
        return sleep_lambda()
    with open(argv[2]) as f:
        items = json.load(f)
    if argv[1] == "factorial":
        with Pool(8) as p:
            results = p.map(factorial, items)
    else:
        results = easy_parallize(partial(some_function, y=2, z=3), items)
    with open(argv[3], "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

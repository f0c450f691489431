#!/usr/bin/env python3
"""anchor.py - what a pexec user would otherwise run: the seeds' Pool.map.

The Python side of every side-by-side row in bench/run.py.  It does what the
seed posts do, written out as a script: json.load the input file, hand every
item to multiprocessing.Pool(N).map with a plain top-level function (a lambda
cannot be pickled), and json.dump the list of results to the output file.

    python3 bench/anchor.py factorial -j 2 in.json out.json
    python3 bench/anchor.py identity  -j 2 in.json out.json
    python3 bench/anchor.py sleep     -j 8 in.json out.json
    python3 bench/anchor.py factorial --loop in.json out.json

--loop is the plain Python loop, one process and no Pool: what
`pexec --serial` with the python plugin stands for.  The python plugin's
rows also import this file's `factorial` (--config
'{"function": "anchor:factorial", "path": ["bench"]}'), so that both sides
run the very same function.

Honest by construction: every item is mapped (no cache, no short cut), the
factorial is the seeds' recursive one on Python's exact ints, and the output
is a JSON array whose values equal pexec's (only the whitespace differs), so
run.py checks them against each other.  Pool.map's chunksize is left at its
default, as in the seeds.
"""
import argparse
import json
import multiprocessing
import sys
import time


def factorial(n):
    """The seeds' recursive factorial (n <= 99 here, well inside the
    recursion limit)."""
    if n == 0:
        return 1
    return n * factorial(n - 1)


def identity(x):
    """Returns the item unchanged: Pool.map's own cost, with no work to hide
    it."""
    return x


def sleep(x):
    """The seeds' timing example: sleep x seconds, return x."""
    time.sleep(x)
    return x


MODES = {"factorial": factorial, "identity": identity, "sleep": sleep}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("-j", "--jobs", type=int, default=2, help="Pool size (default 2)")
    ap.add_argument("--loop", action="store_true",
                    help="no Pool: a plain loop over the items in this process")
    ap.add_argument("input", help="a JSON file holding one array of items")
    ap.add_argument("output", help="where the JSON array of results goes")
    args = ap.parse_args(argv)

    with open(args.input, "rb") as f:
        items = json.load(f)
    f = MODES[args.mode]
    if args.loop:
        results = [f(x) for x in items]
    else:
        with multiprocessing.Pool(args.jobs) as pool:
            results = pool.map(f, items)
    with open(args.output, "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

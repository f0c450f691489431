"""fixture.py - the functions tests/test_python.c runs through the python
plugin: values, faults and state, each named for what it shows."""
import atexit
import gc
import os
import random
import signal
import sys
import time


def factorial(n):
    """The seeds' recursive factorial, on Python's exact ints."""
    if n == 0:
        return 1
    return n * factorial(n - 1)


def kind(x):
    """The item's Python type, and the item, as the function sees it."""
    return [type(x).__name__, x]


def unlucky(x):
    if x == 13:
        raise ValueError("unlucky")
    return x * 2


class Unlucky(Exception):
    """An exception of this module's own."""


def own_exception(x):
    raise Unlucky(f"item {x}")


def exits(x):
    sys.exit(3)


def spin(x):
    """Never returns for 1: what --timeout is for."""
    while x == 1:
        pass
    return x


def grow(x):
    """Asks for 4 GiB for 1: what --memory-limit is for."""
    if x == 1:
        return len(bytearray(4 << 30))
    return x


def crash_once(path):
    """Kills its own worker the first time it sees `path` missing, then
    leaves the file there: the second attempt (--retries) succeeds."""
    if not os.path.exists(path):
        open(path, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return "ok"


def not_json(what):
    """A result JSON cannot hold."""
    values = {
        "set": {1, 2},
        "object": object(),
        "nan": float("nan"),
        "inf": float("inf"),
        "bytes": b"x",
        "tuple-key": {(1, 2): 3},
    }
    if what == "circular":
        a = []
        a.append(a)
        return a
    return values.get(what, what)


def keys(x):
    """Keys json.dumps converts, and a tuple (written as a list)."""
    return {2: "int", 2.5: "float", True: "bool", None: "none", "s": (1, 2)}


def shout(x):
    """Prints (to stderr, never into the output), one line unfinished."""
    print(f"shout {x}")
    print(f"partial {x}", end="")
    return x


def add3(x, y, z=0):
    """The seeds' function of several inputs, with fixed extra ones."""
    return x + y + z


def count(x):
    return 1


def add(a, b):
    return a + b


def fail_reduce(a, b):
    if b == 7:
        raise ArithmeticError("no sevens")
    return a + b


def worker_state(x):
    """What a worker's interpreter says about itself: its pid, a random
    number (reseeded after the fork), whether the collector runs and how
    many objects setup froze."""
    time.sleep(0.05)
    return [os.getpid(), random.random(), gc.isenabled(), gc.get_freeze_count() > 0]


def c_extensions(x):
    """Modules written in C, which need libpython's symbols global."""
    import _json
    import math
    import decimal
    return [math.factorial(x), str(decimal.Decimal(x) / 4), _json.__name__]


def note_exit():
    """An atexit hook, registered at import: it runs once, in pexec's
    teardown, never in a worker."""
    path = os.environ.get("PEXEC_TEST_EXIT_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")


atexit.register(note_exit)

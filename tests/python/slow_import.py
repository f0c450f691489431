"""slow_import.py - a module that takes a second to import, and says who
imported it: each import appends the importing process's pid to the file
named by PEXEC_TEST_IMPORT_LOG.  Imported once, in pexec's setup, its log has
one line; imported by every worker, it would have one per worker."""
import os
import time

time.sleep(1)
with open(os.environ["PEXEC_TEST_IMPORT_LOG"], "a") as f:
    f.write(f"{os.getpid()}\n")


def imported_by(x):
    return os.getppid()

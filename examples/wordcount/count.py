"""The plain single-process word count that examples/wordcount/run.sh checks
pexec's against, and the generator of its tree of text files.

    count.py make-tree DIR        writes DIR/dNN/fNN.txt, prints their paths (JSON)
    count.py check PATHS COUNTS   counts PATHS' words itself, compares with COUNTS
"""
import collections
import json
import os
import random
import re
import sys

WORDS = ("pool map fork worker chunk item result plugin pipe signal the a of and to "
         "Python C JSON Überschrift naïve 2024 x86_64").split()


def make_tree(root):
    rng = random.Random(2015)
    paths = []
    for d in range(20):
        os.makedirs(os.path.join(root, f"d{d:02}"), exist_ok=True)
        for f in range(25):
            path = os.path.abspath(os.path.join(root, f"d{d:02}", f"f{f:02}.txt"))
            lines = (" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 20)))
                     for _ in range(rng.randint(0, 200)))
            with open(path, "w", encoding="utf-8") as out:
                out.write(",\n".join(lines) + "\n")
            paths.append(path)
    json.dump(paths, sys.stdout)


def check(paths_file, counts_file):
    # A word: a run of ASCII letters and digits or of non-ASCII bytes, ASCII
    # letters lowercased (what plugins/wordcount.c counts).
    counts = collections.Counter()
    for path in json.load(open(paths_file)):
        with open(path, "rb") as f:
            for w in re.findall(rb"[A-Za-z0-9\x80-\xff]+", f.read()):
                counts[w.lower().decode("utf-8")] += 1
    got = json.load(open(counts_file))
    if got != dict(counts):
        sys.exit(f"MISMATCH: pexec {got} != plain count {dict(counts)}")
    print(f"{len(got)} distinct words, {sum(got.values())} in all: "
          "pexec --reduce matches the plain single-process count")


if __name__ == "__main__":
    if sys.argv[1] == "make-tree":
        make_tree(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3])

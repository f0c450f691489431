#!/usr/bin/env python3
"""run.py - pexec's benchmark harness (issue 4), Python 3 standard library only.

    python3 bench/run.py                 quick mode: R=3, about a minute
    python3 bench/run.py --full          the issue's sizes, R=5
    python3 bench/run.py --scaling       factorial throughput against -j
    python3 bench/run.py --mpi           pexec-mpi with 1, 2, 4 ranks
    python3 bench/run.py --write FILE    also write the Markdown to FILE

`make bench` runs the quick mode, `make bench BENCH_ARGS=--full` the full one.

Each workload of the issue's table runs side by side, interleaved run by run:
pexec with the row's -j, `pexec --serial`, and the Python anchor
(bench/anchor.py: the seeds' multiprocessing.Pool(N).map).  Every command runs
under build/bench/rusage, a small launcher that reports its wall time and the
peak RSS of any of its processes (wait4's ru_maxrss; see bench/rusage.c for why
it must be a separate small program).  Every run's output is checked, and a
wrong one stops the harness with exit status 1:

  - pexec runs: byte for byte against the `--serial` output of the same input,
    itself checked once against values computed here (math.factorial, or the
    input's own bytes for identity);
  - Python runs: its JSON loaded and compared value by value with pexec's
    (factorial results as exact ints).

The Markdown goes to standard output; progress goes to standard error.  Inputs
are generated once, from fixed seeds, into bench/data/ (gitignored).
"""
import argparse
import datetime
import json
import math
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / "data"

# Sizes and repetitions.  Quick mode keeps every pexec size at the and
# shrinks only the Python side of the memory row, whose 10,000,000 items take
# Pool.map several seconds and some 700 MiB per run.
MODES = {
    "quick": dict(runs=3, factorial=1_000_000, identity=1_000_000, sleep=24,
                  memory=10_000_000, memory_python=1_000_000,
                  startup=50, startup_python=5, python=200_000),
    "full": dict(runs=5, factorial=1_000_000, identity=1_000_000, sleep=24,
                 memory=10_000_000, memory_python=10_000_000,
                 startup=100, startup_python=10, python=1_000_000),
}
SCALING_JOBS = (1, 2, 4, 8, 12, 16)
WORKLOADS = ("factorial", "identity", "sleep", "memory", "startup", "python")
INPUT_VERSION = "v1"  # bump when a generator changes, so cached inputs are remade
MIB = 1024  # ru_maxrss is in KiB


class BenchError(Exception):
    """A run that failed or gave a wrong result: the harness stops."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def rel(path):
    """A path as the commands show it: relative to the repository root."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# ---- inputs ----

def chunked(n, make, size=100_000):
    """Yields lists of item texts, `size` at a time, `make(k)` making k."""
    done = 0
    while done < n:
        k = min(size, n - done)
        yield make(k)
        done += k


def write_inputs(stem, chunks, ndjson=False):
    """Writes the items once into bench/data/STEM.json (and STEM.ndjson), in
    the layout pexec writes its own output in ("[\\n" items joined by ",\\n"
    "\\n]\\n"; one per line), so that identity's output can be compared with
    its input byte for byte.  Cached: an existing file is reused; a new one
    appears only when complete."""
    paths = {"json": DATA / f"{stem}.json"}
    if ndjson:
        paths["ndjson"] = DATA / f"{stem}.ndjson"
    if all(p.exists() for p in paths.values()):
        return paths
    DATA.mkdir(parents=True, exist_ok=True)
    log(f"generating {', '.join(rel(p) for p in paths.values())}")
    tmp = {fmt: p.with_name(p.name + ".tmp") for fmt, p in paths.items()}
    files = {fmt: open(t, "w") for fmt, t in tmp.items()}
    try:
        first = True
        for chunk in chunks:
            if not chunk:
                continue
            files["json"].write(("[\n" if first else ",\n") + ",\n".join(chunk))
            if ndjson:
                files["ndjson"].write("\n".join(chunk) + "\n")
            first = False
        files["json"].write("[]\n" if first else "\n]\n")
    finally:
        for f in files.values():
            f.close()
    for fmt, t in tmp.items():
        os.replace(t, paths[fmt])
    return paths


def factorial_input(n):
    """The seeds' workload: n random integers from 1 to 99."""
    r = random.Random(4001)
    texts = [str(i) for i in range(1, 100)]
    return write_inputs(f"factorial-{n}-{INPUT_VERSION}",
                        chunked(n, lambda k: r.choices(texts, k=k)))["json"]


def halves(inp):
    """The two halves of a file in write_inputs' layout (one item per line),
    as two inputs of that layout: what two independent runs would get."""
    paths = [inp.with_name(inp.stem + f"-half{k}.json") for k in (1, 2)]
    if all(p.exists() for p in paths):
        return paths
    items = inp.read_text().splitlines()[1:-1]
    items = [t.rstrip(",") for t in items]
    h = len(items) // 2
    for p, part in zip(paths, (items[:h], items[h:])):
        write_inputs(p.stem, iter([part]))
    return paths


def identity_input(n):
    """n integers: mostly within 32 bits, every 100th beyond 2^53 (where a
    double loses digits) and every 1000th beyond 2^64; the first is 2^53 + 1.
    Only a pass-through that never parses them gives them back exactly."""
    r = random.Random(4002)

    def make(k):
        out = []
        for _ in range(k):
            i = make.next
            make.next += 1
            if i == 0:
                v = 2**53 + 1
            elif i % 1000 == 999:
                v = r.choice((1, -1)) * r.randrange(2**64, 10**30)
            elif i % 100 == 99:
                v = r.choice((1, -1)) * r.randrange(2**53 + 1, 2**63)
            else:
                v = r.randrange(-2**31, 2**31)
            out.append(str(v))
        return out
    make.next = 0
    return write_inputs(f"identity-{n}-{INPUT_VERSION}", chunked(n, make))["json"]


def sleep_input(n):
    """The seeds' timing example: n items of 0.1 seconds."""
    return write_inputs(f"sleep-{n}-{INPUT_VERSION}", iter([["0.1"] * n]))["json"]


def memory_input(n):
    """n small integers (0..999), as a JSON array and as NDJSON."""
    r = random.Random(4004)
    texts = [str(i) for i in range(1000)]
    return write_inputs(f"memory-{n}-{INPUT_VERSION}",
                        chunked(n, lambda k: r.choices(texts, k=k)), ndjson=True)


def empty_input():
    return write_inputs(f"empty-{INPUT_VERSION}", iter([]))["json"]


# ---- running one command ----

class Launcher:
    """build/bench/rusage (bench/rusage.c), built here on first use."""

    def __init__(self, build):
        self.path = build / "bench" / "rusage"
        src = BENCH / "rusage.c"
        if not self.path.exists() or self.path.stat().st_mtime < src.stat().st_mtime:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cc = os.environ.get("CC") or "cc"
            cmd = [cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-o", str(self.path), str(src)]
            log("building " + rel(self.path) + ": " + shlex.join(cmd))
            subprocess.run(cmd, check=True)
        self.report = DATA / "rusage.report"

    def run(self, argv, stdout=None):
        """Runs argv from the repository root; returns (wall seconds, peak RSS
        in KiB).  A non-zero exit is an error: every benchmark run must
        succeed."""
        DATA.mkdir(parents=True, exist_ok=True)
        # The command's standard output goes to `stdout` (a path), opened
        # here, outside the timed part, as a shell's `> FILE` would be.
        with open(ROOT / stdout if stdout else os.devnull, "wb") as out:
            cp = subprocess.run([str(self.path), str(self.report), *argv], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.PIPE)
        if cp.returncode != 0:
            raise BenchError(f"launcher failed ({cp.returncode}): "
                             + cp.stderr.decode(errors="replace").strip())
        code, wall_ns, rss_kib, _user, _sys = (int(x) for x in self.report.read_text().split())
        if code != 0:
            tail = cp.stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise BenchError(f"`{shlex.join(argv)}` exited with status {code}:\n  "
                             + "\n  ".join(tail))
        return wall_ns / 1e9, rss_kib


def rss_self_check(launcher):
    """Checks, on this kernel, what the RSS figures rest on: a process's wait4
    ru_maxrss covers the descendants it waited for (a 64 MiB grandchild shows
    though its parent holds ~10 MiB), and the launcher adds no floor of its
    own (`true` reads about a MiB)."""
    grandchild = ("import os\n"
                  "pid = os.fork()\n"
                  "if pid == 0:\n"
                  "    b = bytearray(64 << 20)\n"
                  "    for i in range(0, len(b), 4096): b[i] = 1\n"
                  "    os._exit(0)\n"
                  "os.waitpid(pid, 0)\n")
    _, seen = launcher.run([sys.executable, "-c", grandchild])
    _, alone = launcher.run([sys.executable, "-c", "pass"])
    _, floor = launcher.run(["true"])
    if seen < 64 * MIB or alone >= 64 * MIB:
        raise BenchError(f"wait4's ru_maxrss does not single out waited-for descendants here: "
                         f"a process read {alone} KiB alone and {seen} KiB with a 64 MiB "
                         f"child; peak RSS figures would be wrong")
    return (f"a Python process ({mib(alone)} alone) whose forked child touches 64 MiB "
            f"reads {mib(seen)}; `true` reads {mib(floor)}")


# ---- formatting ----

def secs(t):
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


def mib(kib):
    return f"{kib / MIB:.1f} MiB"


def count(n):
    return f"{n:,}"


# ---- workloads ----

class Variant:
    """One column of a row: a command and how its output is checked."""

    def __init__(self, label, argv, out, check, runs=None, stdout=None, summary=None):
        self.label, self.argv, self.out, self.check = label, argv, out, check
        self.stdout = stdout  # a path the command's standard output goes to
        self.runs = runs  # None: the harness's R
        self.times, self.rss = [], []
        # pexec's --summary FILE: its own CPU seconds (cpu_seconds.pexec),
        # the parent's alone, as getrusage(RUSAGE_SELF) counts them.
        self.summary, self.cpu = summary, []
        if summary:
            self.argv = [*argv[:1], "--summary", rel(summary), *argv[1:]]

    def run_once(self, launcher):
        self.out.unlink(missing_ok=True)
        t, rss = launcher.run(self.argv, self.stdout)
        self.check(self.out)
        self.times.append(t)
        self.rss.append(rss)
        if self.summary:
            with open(self.summary) as f:
                self.cpu.append(json.load(f)["cpu_seconds"]["pexec"])
        return t, rss

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def peak(self):
        return max(self.rss)


class Workload:
    """One row: pexec -jN, pexec --serial, the Python anchor, side by side.

    `expect(path)` checks the --serial reference output once.  `python_input`,
    for identity only, gives the anchor a smaller input (quick mode's memory
    row), whose own values are then what its output must hold."""

    def __init__(self, cfg, key, title, plugin, jobs, inp, items, expect, ndjson=False,
                 python_input=None, python_items=None, anchor=True, runs=None, python_runs=None,
                 extra=(), python=None, anchor_mode=None):
        self.key, self.title, self.jobs, self.items = key, title, jobs, items
        self.python_items = python_items if python_items is not None else items
        self.expect = expect
        self.ref = DATA / f"ref-{key}.{'ndjson' if ndjson else 'json'}"
        self._ref_values = None
        fmt = ["--input-format", "ndjson", "--output-format", "ndjson"] if ndjson else []
        pexec = rel(cfg.pexec)
        self.cfg_pexec = cfg.pexec
        jflag = [f"-j{jobs}"] if jobs else []

        def out(name):
            return DATA / f"out-{key}-{name}.{'ndjson' if ndjson else 'json'}"

        # pexec writes to standard output redirected to a file, as Python's
        # json.dump writes a file: neither makes it durable.  (-o FILE adds
        # fsync and the resume journal; RESULTS.md measures that apart.)
        self.serial = Variant("pexec --serial",
                              [pexec, "-p", plugin, *extra, "--serial", *fmt, rel(inp)],
                              out("serial"), self.same_bytes, runs, stdout=rel(out("serial")),
                              summary=DATA / f"summary-{key}-serial.json")
        self.pexec = Variant(f"pexec -j{jobs}" if jobs else "pexec (default -j)",
                             [pexec, "-p", plugin, *extra, *jflag, *fmt, rel(inp)],
                             out("pexec"), self.same_bytes, runs, stdout=rel(out("pexec")),
                             summary=DATA / f"summary-{key}-pexec.json")
        self.variants = [self.pexec, self.serial]
        self.ceiling = None
        self.python = None
        self.loop = None
        self.python_path = None
        self.python_exe = python or cfg.python
        self.anchor_mode = anchor_mode or plugin
        self.out = out
        if anchor:
            pj = jobs or cfg.cpus
            py_in = python_input or inp
            self.python = Variant(f"Python Pool({pj})",
                                  [self.python_exe, rel(BENCH / "anchor.py"), self.anchor_mode,
                                   "-j", str(pj), rel(py_in), rel(out("python"))],
                                  out("python"), self.same_values, python_runs)
            self.python_ref = python_input
            self.variants.append(self.python)

    def add_loop(self, inp):
        """The plain Python loop the --serial run stands for: json.load, the
        function on each item in one process, json.dump (anchor.py --loop)."""
        self.loop = Variant("Python loop",
                            [self.python_exe, rel(BENCH / "anchor.py"), self.anchor_mode,
                             "--loop", rel(inp), rel(self.out("loop"))],
                            self.out("loop"), self.same_values)
        self.variants.append(self.loop)

    def add_ceiling(self, plugin, inp):
        """The hardware's limit for two workers: two independent `--serial`
        runs, each on half of the input, started together.  No pool, no
        parent, no messages: what two cores do with the same work when
        nothing is shared.  Its output, the two halves joined, must equal the
        reference."""
        pexec = rel(self.cfg_pexec)
        h1, h2 = halves(inp)
        o1, o2 = (DATA / f"out-{self.key}-half{k}.json" for k in (1, 2))
        script = (f"{pexec} -p {plugin} --serial {rel(h1)} > {rel(o1)} & p=$!; "
                  f"{pexec} -p {plugin} --serial {rel(h2)} > {rel(o2)}; b=$?; "
                  f"wait $p; exit $(( $? | b ))")

        def check(_out):
            a, b = o1.read_bytes(), o2.read_bytes()
            if not (a.endswith(b"\n]\n") and b.startswith(b"[\n")):
                raise BenchError(f"{self.key}: unexpected layout in {rel(o1)} / {rel(o2)}")
            joined = a[:-3] + b",\n" + b[2:]
            if joined != self.ref.read_bytes():
                raise BenchError(f"{self.key}: the two halves' outputs joined differ from "
                                 f"the --serial output ({rel(self.ref)})")
            o2.unlink()
        self.ceiling = Variant("2 x --serial on halves", ["sh", "-c", script], o1, check)
        self.variants.insert(2, self.ceiling)

    def make_reference(self, launcher):
        """An untimed --serial run (it also warms the page cache): its output,
        checked against values computed here, is what every run must equal."""
        self.ref.unlink(missing_ok=True)
        self.serial.out.unlink(missing_ok=True)
        launcher.run(self.serial.argv, self.serial.stdout)
        os.replace(self.serial.out, self.ref)
        self.expect(self.ref)

    def same_bytes(self, out):
        if not same_file(out, self.ref):
            raise BenchError(f"{self.key}: {rel(out)} differs from the --serial output "
                             f"({rel(self.ref)})")

    def ref_values(self):
        if self._ref_values is None:
            self._ref_values = load_json(self.ref)
        return self._ref_values

    def same_values(self, out):
        got = load_json(out)
        want = self.ref_values() if self.python_ref is None else load_json(self.python_ref)
        if got != want:
            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                         min(len(got), len(want)))
            raise BenchError(f"{self.key}: Python's {rel(out)} differs from pexec's at item "
                             f"{first} ({len(got)} results, {len(want)} expected)")

    def run(self, launcher, runs):
        log(f"{self.key}: reference run: {shlex.join(self.serial.argv)}")
        self.make_reference(launcher)
        for r in range(max(v.runs or runs for v in self.variants)):
            for v in self.variants:
                n = v.runs or runs
                if r < n:
                    t, rss = v.run_once(launcher)
                    log(f"{self.key}: run {r + 1}/{n}: {v.label}: {secs(t)}, {mib(rss)}")
        for v in self.variants:
            v.out.unlink(missing_ok=True)
        self._ref_values = None
        self.ref.unlink(missing_ok=True)


def same_file(a, b, block=1 << 20):
    """Byte for byte (filecmp.cmp would trust its cache of size and mtime)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(block), fb.read(block)
            if x != y:
                return False
            if not x:
                return True


def load_json(path):
    """Parses a JSON array, or NDJSON (one value a line) by its name."""
    with open(path, "rb") as f:
        if str(path).endswith("ndjson"):
            return [json.loads(line) for line in f if line.strip()]
        return json.load(f)


def expect_equal(want, what):
    def check(ref):
        got = load_json(ref)
        if got != want():
            raise BenchError(f"pexec --serial output {rel(ref)} is not {what}")
    return check


def expect_same_bytes(inp):
    def check(ref):
        if not same_file(ref, inp):
            raise BenchError(f"identity's --serial output {rel(ref)} is not its input "
                             f"{rel(inp)} byte for byte")
    return check


def expect_factorials(inp):
    def check(ref):
        got = load_json(ref)
        cache = {}
        for i, n in enumerate(load_json(inp)):
            if n not in cache:
                cache[n] = math.factorial(n)
            if i >= len(got) or got[i] != cache[n]:
                raise BenchError(f"pexec --serial output {rel(ref)}: item {i} is not {n}!")
        if len(got) != i + 1:
            raise BenchError(f"pexec --serial output {rel(ref)}: {len(got)} results, "
                             f"{i + 1} items")
    return check


def build_workloads(cfg, only):
    size = cfg.size
    rows = []
    if "factorial" in only:
        inp = factorial_input(size["factorial"])
        w = Workload(cfg, "factorial", "factorial of random integers 1..99",
                     "factorial", 2, inp, size["factorial"], expect_factorials(inp))
        w.add_ceiling("factorial", inp)
        rows.append(w)
    if "identity" in only:
        inp = identity_input(size["identity"])
        rows.append(Workload(cfg, "identity", "identity over integers (some beyond 2^53)",
                             "identity", 2, inp, size["identity"], expect_same_bytes(inp)))
    if "sleep" in only:
        n = size["sleep"]
        rows.append(Workload(cfg, "sleep", "sleep 0.1 s per item", "sleep", 8, sleep_input(n), n,
                             expect_equal(lambda n=n: [0.1] * n, f"{n} times 0.1")))
    if "memory" in only:
        n, pn = size["memory"], size["memory_python"]
        paths = memory_input(n)
        py_in = memory_input(pn)["json"] if pn != n else None
        rows.append(Workload(cfg, "memory-ndjson", "identity, NDJSON in and out", "identity", 2,
                             paths["ndjson"], n, expect_same_bytes(paths["ndjson"]),
                             ndjson=True, anchor=False))
        rows.append(Workload(cfg, "memory-json", "identity, JSON array in and out", "identity", 2,
                             paths["json"], n, expect_same_bytes(paths["json"]),
                             python_input=py_in, python_items=pn))
    if "startup" in only:
        rows.append(Workload(cfg, "startup", "startup with an empty input (`[]`)", "identity", 0,
                             empty_input(), 0, expect_equal(lambda: [], "[]"),
                             runs=size["startup"], python_runs=size["startup_python"]))
    if "python" in only:
        rows += python_workloads(cfg)
    return rows


def python_plugin(cfg):
    """The interpreter the python plugin embeds (its sys.executable), which
    the Python side of its rows runs on, so that both sides run the same
    CPython; None where the plugin is not built."""
    if not (cfg.pexec.parent / "plugins" / "python.so").exists():
        return None
    cp = subprocess.run([str(cfg.pexec), "-p", "python", "--output-format", "ndjson",
                         "--config", json.dumps({"lambda": "lambda x: __import__('sys').executable"})],
                        input=b"[0]", capture_output=True, cwd=ROOT)
    if cp.returncode != 0:
        raise BenchError("the python plugin does not run: " + cp.stderr.decode(errors="replace"))
    return json.loads(cp.stdout)


def python_workloads(cfg):
    """The python plugin's rows: the seeds' factorial as a Python function
    (bench/anchor.py's own, imported by the plugin) against Pool(N).map of
    the same function and a plain loop, and the seeds' 24 sleeps through a
    lambda (Pool.map cannot pickle one; its side runs a top-level function)."""
    exe = python_plugin(cfg)
    if exe is None:
        log("python rows: skipped (no python plugin: make builds it where python3-dev is installed)")
        return []
    n = cfg.size["python"]
    inp = factorial_input(n)
    fact = ["--config", json.dumps({"function": "anchor:factorial", "path": ["bench"]})]
    rows = []
    w = Workload(cfg, "python-factorial", "the seeds' factorial as a Python function",
                 "python", 2, inp, n, expect_factorials(inp), extra=fact, python=exe,
                 anchor_mode="factorial")
    w.add_loop(inp)
    # The python3 on PATH, where it is another interpreter (a pyenv build,
    # say): what a user who types `python3` would be comparing with.
    path_py = shutil.which("python3")
    if path_py and os.path.realpath(path_py) != os.path.realpath(exe):
        w.python_path = Variant(f"Python Pool(2), {path_py}",
                                [path_py, rel(BENCH / "anchor.py"), "factorial", "-j", "2",
                                 rel(inp), rel(w.out("python-path"))],
                                w.out("python-path"), w.same_values)
        w.variants.append(w.python_path)
    rows.append(w)
    if cfg.cpus >= 16:
        w = Workload(cfg, "python-factorial-16", "the seeds' factorial as a Python function",
                     "python", 16, inp, n, expect_factorials(inp), extra=fact, python=exe,
                     anchor_mode="factorial")
        w.variants.remove(w.serial)  # timed in the row above; still the reference here
        rows.append(w)
    m = cfg.size["sleep"]
    lam = ["--config", json.dumps({"lambda": "lambda x: __import__('time').sleep(x) or x"})]
    rows.append(Workload(cfg, "python-sleep", f"{m} x sleep(0.1) through a lambda", "python", 8,
                         sleep_input(m), m, expect_equal(lambda m=m: [0.1] * m, f"{m} times 0.1"),
                         extra=lam, python=exe, anchor_mode="sleep"))
    return rows


def python_convert(cfg):
    """bench/pyconvert.c: one item's conversion, each way the plugin could
    convert, built against the python plugin's own reader and writer."""
    exe = cfg.pexec.parent / "bench" / "pyconvert"
    srcs = [BENCH / "pyconvert.c", ROOT / "plugins" / "python_json.c"]
    try:
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "python3-embed"],
                               capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        raise BenchError("--python-convert needs Python's embedding library (python3-dev)")
    if not exe.exists() or any(exe.stat().st_mtime < p.stat().st_mtime for p in srcs):
        exe.parent.mkdir(parents=True, exist_ok=True)
        cmd = [os.environ.get("CC") or "cc", "-std=c11", "-O2", "-Wall", "-Wextra",
               f"-I{ROOT / 'sdk'}", f"-I{ROOT / 'plugins'}", "-o", str(exe), *map(str, srcs), *flags]
        log("building " + rel(exe) + ": " + shlex.join(cmd))
        subprocess.run(cmd, check=True)
    cp = subprocess.run([str(exe), "50000"], capture_output=True, text=True)
    if cp.returncode != 0:
        raise BenchError("pyconvert failed: " + cp.stderr)
    lines = header(cfg, "python plugin: the cost of one item's JSON <-> Python conversion",
                   "CPU time per call, the best of 5 rounds")
    lines += cp.stdout.rstrip("\n").split("\n")
    lines += ["", f"Command: `{rel(exe)}` (built from {', '.join(rel(p) for p in srcs)}).", ""]
    return lines, []


# ---- goals ----

def goals(rows):
    """The issue's goals, from the measured medians: (what, measured, goal, ok)."""
    by = {w.key: w for w in rows}
    out = []

    def speedup(key, base, label, goal):
        w = by.get(key)
        if not w or (base == "python" and not w.python):
            return
        b = w.python if base == "python" else w.serial
        x = b.median / w.pexec.median
        out.append((f"{w.key}: {w.pexec.label} vs {b.label} (speed-up)", f"{x:.2f}x",
                    label, x >= goal))

    def ceiling(key, goal):
        """What no machine can beat: --serial's CPU over the -jN parent's own
        (issue 13); the medians of the runs' --summary cpu_seconds.pexec."""
        w = by.get(key)
        if not w or not w.pexec.cpu or not w.serial.cpu:
            return
        par = statistics.median(w.pexec.cpu)
        ser = statistics.median(w.serial.cpu)
        x = ser / par if par > 0 else float("inf")
        out.append((f"{key}: ceiling, --serial CPU ({secs(ser)}) / the {w.pexec.label} "
                    f"parent's own CPU ({secs(par)})", f"{x:.1f}x", f">= {goal}x", x >= goal))

    ceiling("factorial", 40)
    ceiling("identity", 8)
    speedup("factorial", "python", ">= 8x", 8)
    speedup("factorial", "serial", ">= 1.8x", 1.8)
    w = by.get("python-factorial")
    if w:
        x = w.python.median / w.pexec.median
        out.append((f"python-factorial: {w.pexec.label} vs {w.python.label} (speed-up)",
                    f"{x:.2f}x", ">= 2x", x >= 2))
        x = w.serial.median / w.loop.median
        out.append((f"python-factorial: {w.serial.label} vs a plain Python loop with "
                    f"json.load/json.dump (slow-down)", f"{x:.2f}x", "<= 1.2x", x <= 1.2))
        if w.python_path:
            x = w.python_path.median / w.pexec.median
            out.append((f"python-factorial: {w.pexec.label} vs {w.python_path.label} "
                        f"(speed-up; another interpreter than the plugin's)", f"{x:.2f}x",
                        "(information)", None))
    w = by.get("python-factorial-16")
    if w:
        x = w.python.median / w.pexec.median
        out.append((f"python-factorial-16: {w.pexec.label} vs {w.python.label} (speed-up)",
                    f"{x:.2f}x", ">= 4x", x >= 4))
    w = by.get("python-sleep")
    if w:
        out.append((f"python-sleep: {w.items} x 0.1 s through a lambda, {w.pexec.label}",
                    secs(w.pexec.median), "< 320 ms", w.pexec.median < 0.320))
    w = by.get("factorial")
    if w and w.ceiling:
        x = w.serial.median / w.ceiling.median
        share = w.ceiling.median / w.pexec.median
        out.append(("factorial: this machine's ceiling, two `--serial` on halves at once, "
                    "vs one `--serial` (speed-up); and the share of it pexec -j2 reaches",
                    f"{x:.2f}x; {share:.0%}", "(information)", None))
    speedup("identity", "python", ">= 8x", 8)
    speedup("identity", "serial", ">= 1.0x (no slower)", 1.0)
    if "sleep" in by:
        w = by["sleep"]
        out.append((f"sleep: {w.items} x 0.1 s, {w.pexec.label} (limit 300 ms)",
                    secs(w.pexec.median), "< 320 ms", w.pexec.median < 0.320))
    for key in ("memory-ndjson", "memory-json"):
        if key in by:
            w = by[key]
            peak = max(w.pexec.peak, w.serial.peak)
            out.append((f"{key}: {count(w.items)} items, peak RSS of any pexec process "
                        f"({w.pexec.label} and --serial)", mib(peak), "< 64 MiB",
                        peak < 64 * MIB))
    if "startup" in by:
        w = by["startup"]
        out.append((f"startup: {w.pexec.label} on `[]`", secs(w.pexec.median), "< 5 ms",
                    w.pexec.median < 0.005))
    return out


# ---- the report ----

def header(cfg, title, how):
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = 0
    version = subprocess.run([str(cfg.pexec), "--version"], capture_output=True,
                             text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    load = " / ".join(f"{x:.2f}" for x in cfg.load)
    return [
        f"# {title}",
        "",
        f"- date: {cfg.date.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {model}; nproc {os.cpu_count()} ({cfg.cpus} usable by this process); "
        f"{mem:.1f} GiB RAM; Linux {platform.release()}",
        f"- load average at start (1/5/15 min): {load}",
        f"- {version}, commit {commit}, `{rel(cfg.pexec)}`; Python {platform.python_version()}",
        f"- mode: {cfg.mode}: each time is the median wall time of R={cfg.runs} runs "
        f"({how}); each peak RSS is the largest of those runs",
        "",
    ]


def cell(v, items=None):
    """'median · peak (label)', or a dash where the row has no such column."""
    if v is None:
        return "—"
    what = v.label.replace("pexec ", "").replace("Python ", "")
    if what.startswith("("):  # "pexec (default -j)"
        what = what[1:-1]
    if items is not None:
        what += f", {count(items)} items"
    return f"{secs(v.median)} · {mib(v.peak)} ({what})"


def report(cfg, rows, selfcheck):
    lines = header(cfg, "pexec benchmarks (issue 4)",
                   "a row's commands interleaved run by run, after one untimed `--serial` "
                   f"reference run; startup: {cfg.size['startup']} runs of pexec, "
                   f"{cfg.size['startup_python']} of Python")
    lines += [
        "## Measurements",
        "",
        "Median wall time · peak RSS of any process of the run.",
        "",
        "| workload | items | pexec -jN | pexec --serial | Python Pool(N).map |",
        "|---|---|---|---|---|",
    ]
    for w in rows:
        py_items = w.python_items if w.python and w.python_items != w.items else None
        serial = f"{secs(w.serial.median)} · {mib(w.serial.peak)}" if w.serial.times else "—"
        python = cell(w.python, py_items)
        if w.loop:
            python += f"; plain loop: {secs(w.loop.median)} · {mib(w.loop.peak)}"
        if w.python_path:
            python += (f"; Pool(2) on `{w.python_path.argv[0]}`: {secs(w.python_path.median)} · "
                       f"{mib(w.python_path.peak)}")
        lines.append(f"| {w.key}: {w.title} | {count(w.items)} | {cell(w.pexec)} "
                     f"| {serial} | {python} |")
    lines.append("")
    lines += ["## Goals", "", "| goal | measured | target | result |", "|---|---|---|---|"]
    results = goals(rows)
    for what, measured, target, ok in results:
        verdict = "—" if ok is None else "PASS" if ok else "FAIL"
        lines.append(f"| {what} | {measured} | {target} | {verdict} |")
    lines += ["", "## Commands", "",
              "Run from the repository root, each under "
              f"`{rel(cfg.launcher.path)} REPORT ...` (bench/rusage.c).", ""]
    for w in rows:
        lines.append(f"- {w.key}:")
        for v in w.variants:
            lines.append(f"  - `{shlex.join(v.argv)}{' > ' + v.stdout if v.stdout else ''}`")
    lines += ["", "## How", "",
              "- wall time: CLOCK_MONOTONIC in the launcher, from its fork() to wait4()'s "
              "return (the harness's own process start-up is not counted).",
              "- peak RSS: ru_maxrss from the launcher's wait4() on the command, which on "
              "Linux is the largest peak of the command and of every descendant it waited "
              "for (pexec reaps its workers, Pool joins its own). It is the peak of the "
              "largest process, not a sum. Self-check on this machine: " + selfcheck + ".",
              "- correctness: every pexec output equals the `--serial` output byte for byte; "
              "the `--serial` output was checked against math.factorial / the input's own "
              "bytes; every Python output, loaded with json, equals pexec's values exactly.",
              "- python rows: the plugin imports bench/anchor.py's own function, and the "
              "Python side runs on the interpreter the plugin embeds (its sys.executable), so "
              "both sides run the same CPython.",
              ""]
    return lines, results


def scaling(cfg, launcher):
    n = cfg.scaling_items or cfg.size["factorial"]
    inp = factorial_input(n)
    jobs = [j for j in SCALING_JOBS if j <= cfg.max_jobs]
    if cfg.max_jobs not in jobs:
        jobs.append(cfg.max_jobs)
    w = Workload(cfg, "scaling", "factorial", "factorial", 1, inp, n, expect_factorials(inp),
                 anchor=False)
    pexec = rel(cfg.pexec)
    variants = [w.serial]
    for j in jobs:
        out = DATA / f"out-scaling-j{j}.json"
        variants.append(Variant(f"pexec -j{j}",
                                [pexec, "-p", "factorial", f"-j{j}", rel(inp)],
                                out, w.same_bytes, stdout=rel(out)))
    w.variants = variants
    w.run(launcher, cfg.runs)

    lines = header(cfg, "pexec scaling: factorial throughput against -j",
                   "the commands interleaved run by run, after one untimed `--serial` "
                   "reference run")
    lines += [f"Factorial of {count(n)} random integers 1..99 (`{rel(inp)}`).", "",
              "| jobs | median wall | items/s | speedup vs --serial | peak RSS |",
              "|---|---|---|---|---|"]
    base = w.serial.median
    for v in variants:
        lines.append(f"| {v.label} | {secs(v.median)} | {n / v.median:,.0f} | "
                     f"{base / v.median:.2f}x | {mib(v.peak)} |")
    results = []
    if 16 in jobs:
        x = base / variants[1 + jobs.index(16)].median
        results.append(("factorial: pexec -j16 vs --serial (speed-up)", f"{x:.2f}x", ">= 12x",
                        x >= 12))
        lines += ["", f"Goal: -j16 at least 12x faster than --serial: {x:.2f}x, "
                      f"{'PASS' if x >= 12 else 'FAIL'}."]
    else:
        lines += ["", f"Goal (-j16 at least 12x --serial): not measured here "
                      f"(the largest -j is {cfg.max_jobs}: the CPUs this process may use, "
                      f"or --max-jobs)."]
    lines += ["", "Commands (from the repository root):", ""]
    lines += [f"- `{shlex.join(v.argv)}{' > ' + v.stdout if v.stdout else ''}`"
              for v in variants]
    lines.append("")
    return lines, results


# ---- pexec-mpi ----

MPI_RANKS = (1, 2, 4)


def mpirun_prefix(np):
    """mpirun as the table runs it: no binding (a rank bound to one core
    would give its pool one CPU), oversubscribed where ranks outnumber
    cores, and as root where the harness is."""
    pre = ["mpirun"]
    if os.geteuid() == 0:
        pre.append("--allow-run-as-root")
    return pre + ["--oversubscribe", "--bind-to", "none", "-np", str(np)]


def mpi_stats(cfg, argv):
    """One more run with PEXEC_MPI_STATS=1: rank 0's own CPU seconds and
    what it moved, from the line pexec-mpi prints."""
    env = dict(os.environ, PEXEC_MPI_STATS="1")
    cp = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, text=True)
    for line in cp.stderr.splitlines():
        if line.startswith("pexec-mpi: stats:"):
            f = line.replace(";", "").split()
            user, sys_ = float(f[f.index("user") + 1]), float(f[f.index("sys") + 1])
            return dict(cpu=user + sys_, user=user, sys=sys_,
                        chunks=int(f[f.index("chunks") + 1]),
                        bytes_in=int(f[f.index("in") + 1]))
    raise BenchError(f"`{shlex.join(argv)}` printed no stats line (status {cp.returncode}):\n"
                     + cp.stderr[-2000:])


def mpi_row(cfg, key, title, plugin, inp, n, expect, jobs_of, out_ext="json"):
    """Local pexec -o against pexec-mpi -o under mpirun with 1, 2, 4 ranks.
    Every variant writes with -o (mpirun would otherwise forward the output
    through its own I/O channel); each must equal the local output."""
    w = Workload(cfg, key, title, plugin, jobs_of(1), inp, n, expect, anchor=False)
    pexec, mpi = rel(cfg.pexec), rel(cfg.pexec_mpi)
    variants = []
    lout = DATA / f"out-{key}-local.{out_ext}"
    variants.append(Variant(f"pexec -j{jobs_of(1)}",
                            [pexec, "-p", plugin, f"-j{jobs_of(1)}", "-o", rel(lout), rel(inp)],
                            lout, w.same_bytes))
    for np in MPI_RANKS:
        out = DATA / f"out-{key}-np{np}.{out_ext}"
        variants.append(Variant(f"pexec-mpi, {np} rank{'s' if np > 1 else ''} x -j{jobs_of(np)}",
                                [*mpirun_prefix(np), mpi, "-p", plugin, f"-j{jobs_of(np)}",
                                 "-o", rel(out), rel(inp)], out, w.same_bytes))
    w.variants = variants
    return w


def mpi_bench(cfg, launcher):
    if not os.access(cfg.pexec_mpi, os.X_OK) or not shutil.which("mpirun"):
        raise BenchError(f"--mpi needs {rel(cfg.pexec_mpi)} (make mpi) and mpirun "
                         f"(apt-get install openmpi-bin libopenmpi-dev)")
    n = cfg.size["factorial"]
    cpus = cfg.cpus
    fact = factorial_input(n)
    nsleep = 192
    sleep_in = write_inputs(f"sleep-mpi-{nsleep}-{INPUT_VERSION}",
                            iter([["0.025"] * nsleep]))["json"]
    rows = [
        mpi_row(cfg, "mpi-factorial", "factorial of random integers 1..99", "factorial",
                fact, n, expect_factorials(fact), lambda np: max(1, cpus // np)),
        mpi_row(cfg, "mpi-sleep", f"{nsleep} items sleeping 0.025 s", "sleep", sleep_in,
                nsleep, expect_equal(lambda: [0.025] * nsleep, f"{nsleep} times 0.025"),
                lambda np: 4),
        mpi_row(cfg, "mpi-startup", "an empty input (`[]`)", "identity", empty_input(), 0,
                expect_equal(lambda: [], "[]"), lambda np: 1),
    ]
    for w in rows:
        w.run(launcher, cfg.runs)
    # Rank 0's CPU on the items, and on the empty input (MPI's start-up and
    # wire-up, the same for every run): the difference is what items cost.
    # Each the run of median CPU among R, the two kinds interleaved.
    def median_run(runs):
        return sorted(runs, key=lambda st: st["cpu"])[len(runs) // 2]

    stats = {}
    for v, e in zip(rows[0].variants[1:], rows[2].variants[1:]):
        runs = [(mpi_stats(cfg, v.argv), mpi_stats(cfg, e.argv)) for _ in range(cfg.runs)]
        stats[v.label] = (median_run([a for a, _ in runs]), median_run([b for _, b in runs]))
        v.out.unlink(missing_ok=True)
        e.out.unlink(missing_ok=True)

    lines = header(cfg, "pexec-mpi on one machine: throughput against ranks",
                   "the commands of a row interleaved run by run, after one untimed "
                   "`--serial` reference run")
    lines += ["Each rank runs its own pool of `-j` workers; rank 0 also reads the input and "
              "writes the output. Every command writes with `-o FILE`; each output equals the "
              "local `pexec` one byte for byte.", ""]
    # What mpirun itself costs (start-up, wire-up, teardown), per column:
    # the empty input's median, taken off the others for their net figures.
    startup = [v.median for v in rows[2].variants]
    lines += ["The *net* columns take off the same column's time on the empty input "
              "(mpirun's start-up, wire-up and teardown, and pexec's own start-up), "
              "leaving the time spent on the items.", ""]
    for w in rows[:2]:
        lines += [f"### {w.key}: {w.title}", "",
                  "| command | median wall | net | net items/s | net vs local pexec | peak RSS |",
                  "|---|---|---|---|---|---|"]
        base = w.variants[0].median - startup[0]
        for v, s0 in zip(w.variants, startup):
            net = v.median - s0
            lines.append(f"| {v.label} | {secs(v.median)} | {secs(net)} | "
                         f"{w.items / net:,.0f} | {base / net:.2f}x | {mib(v.peak)} |")
        lines.append("")
    w = rows[2]
    lines += [f"### {w.key}: {w.title}", "", "| command | median wall | peak RSS |",
              "|---|---|---|"]
    lines += [f"| {v.label} | {secs(v.median)} | {mib(v.peak)} |" for v in w.variants]
    lines.append("")
    lines += ["### Rank 0's own cost (factorial, `PEXEC_MPI_STATS=1`)", "",
              "Rank 0 CPU is user + sys from its own `getrusage`, the median of "
              f"{cfg.runs} runs; *empty* is the same on "
              "`[]` (MPI's start-up and wire-up); *net per item* is the difference over "
              f"{n:,} items. A span is a byte range of the input, sent with its bytes, "
              "that a rank splits, maps and writes at its offset in the output itself.", "",
              "| command | rank 0 CPU (user + sys) | empty | per item, total | "
              "per item, net | spans sent | bytes in |",
              "|---|---|---|---|---|---|---|"]
    for label, (st, em) in stats.items():
        lines.append(f"| {label} | {st['cpu'] * 1000:.0f} ms ({st['user'] * 1000:.0f} + "
                     f"{st['sys'] * 1000:.0f}) | {em['cpu'] * 1000:.0f} ms | "
                     f"{st['cpu'] / n * 1e9:.0f} ns | "
                     f"{(st['cpu'] - em['cpu']) / n * 1e9:.1f} ns | "
                     f"{st['chunks']:,} | {st['bytes_in']:,} |")
    lines += ["", "Commands (from the repository root):", ""]
    for w in rows:
        lines += [f"- `{shlex.join(v.argv)}`" for v in w.variants]
    lines.append("")
    return lines, []


# ---- main ----

def main(argv=None):
    ap = argparse.ArgumentParser(
        description="pexec's benchmarks against Python's Pool.map (issue 4); "
                    "prints a Markdown table.")
    ap.add_argument("--full", action="store_true",
                    help="the issue's sizes and R=5 (default: quick, R=3, about a minute)")
    ap.add_argument("--scaling", action="store_true",
                    help="only factorial throughput for -j 1,2,4,8,12,16 (up to the CPUs "
                         "available) against --serial")
    ap.add_argument("--mpi", action="store_true",
                    help="only pexec-mpi: factorial, sleep and startup with 1, 2, 4 ranks "
                         "(needs make mpi and mpirun)")
    ap.add_argument("--python-convert", action="store_true",
                    help="only the python plugin's conversion cost per item (bench/pyconvert.c): "
                         "its own reader and writer against the json module's")
    ap.add_argument("--runs", type=int, metavar="R", help="runs per figure (default 3, --full 5)")
    ap.add_argument("--only", metavar="LIST",
                    help="comma-separated workloads to run: " + ",".join(WORKLOADS))
    ap.add_argument("--scaling-items", type=int, metavar="N",
                    help="--scaling: factorial items (default 1,000,000, the seeds' workload)")
    ap.add_argument("--max-jobs", type=int, metavar="N",
                    help="--scaling: the largest -j (default: the CPUs this process may use)")
    ap.add_argument("--build", default="build", metavar="DIR",
                    help="the build directory holding pexec and its plugins (default build)")
    ap.add_argument("--write", metavar="FILE", help="also write the Markdown to FILE")
    args = ap.parse_args(argv)

    cfg = argparse.Namespace()
    cfg.mode = "full" if args.full else "quick"
    cfg.size = MODES[cfg.mode]
    cfg.runs = args.runs or cfg.size["runs"]
    cfg.cpus = len(os.sched_getaffinity(0))
    cfg.max_jobs = args.max_jobs or cfg.cpus
    cfg.scaling_items = args.scaling_items
    build = (ROOT / args.build).resolve()
    cfg.pexec = build / "pexec"
    cfg.pexec_mpi = build / "pexec-mpi"
    # The anchor runs under this same interpreter, shown as python3 when it is that.
    which = shutil.which("python3")
    same = which and os.path.realpath(which) == os.path.realpath(sys.executable)
    cfg.python = "python3" if same else sys.executable
    only = WORKLOADS if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = [s for s in only if s not in WORKLOADS]
    if unknown or cfg.runs < 1 or cfg.max_jobs < 1:
        ap.error(f"unknown workload {unknown[0]!r}" if unknown else "--runs and --max-jobs must be >= 1")
    if not os.access(cfg.pexec, os.X_OK):
        ap.error(f"no {rel(cfg.pexec)}: run make first")

    started = time.perf_counter()
    cfg.date = datetime.datetime.now().astimezone()
    cfg.load = os.getloadavg()
    try:
        cfg.launcher = launcher = Launcher(build)
        if args.scaling:
            lines, results = scaling(cfg, launcher)
        elif args.mpi:
            lines, results = mpi_bench(cfg, launcher)
        elif args.python_convert:
            lines, results = python_convert(cfg)
        else:
            selfcheck = rss_self_check(launcher)
            log("peak RSS self-check: " + selfcheck)
            rows = build_workloads(cfg, only)
            for w in rows:
                w.run(launcher, cfg.runs)
            lines, results = report(cfg, rows, selfcheck)
    except BenchError as e:
        log(f"bench: FAILED: {e}")
        return 1
    elapsed = time.perf_counter() - started
    lines.append(f"Harness time: {elapsed:.0f} s.")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.write:
        Path(args.write).write_text(text)
        log(f"written to {args.write}")
    results = [r for r in results if r[3] is not None]
    fails = sum(1 for r in results if not r[3])
    log(f"bench: {len(results) - fails} goals met, {fails} not, in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

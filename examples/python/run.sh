#!/bin/sh
# The seeds' three Python programs on pexec, each beside the Pool.map
# program it replaces (with_pool.py), with their results compared.
#   run.sh [DIR [N]]   files under DIR (default /tmp/pexec-python), and N
#                      random integers for the factorial (default 1000000)
set -eu
cd "$(dirname "$0")/../.."
dir=${1:-/tmp/pexec-python}
n=${2:-1000000}
mkdir -p "$dir"
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
pexec=${PEXEC:-build/pexec}   # the pexec to run (make SANITIZE=1: build-asan/pexec)
seeds='"path": ["examples/python"]'
same() { # same A.json B.json WHAT: the same values, whatever the spacing
	python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$1" "$2" \
		&& echo "ok    $3" || { echo "FAIL  $3: $1 and $2 differ"; exit 1; }
}

echo "== seed 003: 24 x sleep(0.1) through a lambda"
echo "Pool(8).map says:"
python3 examples/python/with_pool.py sleep-lambda || true
python3 -c 'import json; print(json.dumps(list(range(24))))' > "$dir/range24.json"
start=$(date +%s%N)
$pexec -p python -j8 --config '{"lambda": "lambda x: __import__(\"time\").sleep(0.1)"}' \
	"$dir/range24.json" -o "$dir/sleep.json"
echo "pexec -j8 ran the lambda 24 times in $(( ($(date +%s%N) - start) / 1000000 )) ms"
python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != [None] * 24)' "$dir/sleep.json" \
	&& echo "ok    24 results, each None"

echo "== seed 001: the recursive factorial of $n random integers from 1 to 99"
python3 -c 'import json, random, sys; random.seed(1); json.dump([random.randint(1, 99) for _ in range(int(sys.argv[1]))], sys.stdout)' "$n" > "$dir/ints.json"
$pexec -p python --config "{$seeds, \"function\": \"seeds:factorial\"}" "$dir/ints.json" -o "$dir/fact-pexec.json"
python3 examples/python/with_pool.py factorial "$dir/ints.json" "$dir/fact-pool.json"
same "$dir/fact-pexec.json" "$dir/fact-pool.json" "factorials: pexec and Pool.map agree"

echo "== seed 002: easy_parallelize, fixed extra arguments, None results dropped"
python3 -c 'import json; print(json.dumps(list(range(100))))' > "$dir/range100.json"
$pexec -p python --drop-null --config "{$seeds, \"function\": \"seeds:some_function\", \"kwargs\": {\"y\": 2, \"z\": 3}}" \
	"$dir/range100.json" -o "$dir/easy-pexec.json"
python3 examples/python/with_pool.py easy "$dir/range100.json" "$dir/easy-pool.json"
same "$dir/easy-pexec.json" "$dir/easy-pool.json" "easy_parallelize: pexec and Pool.map agree"

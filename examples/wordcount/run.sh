#!/bin/sh
# The seeds' first use: the same text parsing over files in many directories.
# Generates a tree of text files (under $1, default /tmp/pexec-wordcount),
# counts its words with `pexec --plugin wordcount --reduce`, and checks the
# result against a plain single-process count (examples/wordcount/count.py).
set -eu
cd "$(dirname "$0")/../.."
tree=${1:-/tmp/pexec-wordcount}
python3 examples/wordcount/count.py make-tree "$tree" > "$tree.paths.json"
echo "counting the words of $(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$tree.paths.json") files"
build/pexec --plugin wordcount --reduce "$tree.paths.json" -o "$tree.counts.json"
python3 examples/wordcount/count.py check "$tree.paths.json" "$tree.counts.json"

#!/bin/sh
# Installs the system packages pexec builds and tests with, when missing.
# Without the rights to install, prints the exact command to run instead.
#   deps.sh        what building and running needs
#   deps.sh test   also what the tests need (Node.js and npm, for the
#                  JSON Schema validator that checks plugin manifests; Open
#                  MPI, for pexec-mpi's tests; cargo, for the Rust example's;
#                  zsh, for its completion's)
pkgs="build-essential pkg-config libcjson-dev libcriterion-dev python3 python3-dev"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ "$1" = test ]; then
	command -v node >/dev/null || missing="$missing nodejs"
	command -v npm >/dev/null || missing="$missing npm"
	command -v mpicc >/dev/null || missing="$missing libopenmpi-dev"
	command -v mpirun >/dev/null || missing="$missing openmpi-bin"
	command -v cargo >/dev/null || missing="$missing cargo"
	command -v zsh >/dev/null || missing="$missing zsh"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "installing:$missing" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
	echo "pexec needs:$missing" >&2
	echo "run: sudo apt-get install -y$missing" >&2
	exit 1
fi

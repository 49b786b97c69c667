#!/bin/sh
# Runs the side-by-side NFQUEUE benchmark (see README.md) as root.
# Every argument goes to nfqbench, for example: ./run.sh -rounds 3 -seconds 5
set -eu
cd "$(dirname "$0")"
if [ "$(id -u)" != 0 ]; then
	echo "run.sh: run as root (network namespaces, iptables, NFQUEUE)" >&2
	exit 1
fi
if ! command -v go >/dev/null 2>&1; then
	echo "run.sh: needs the Go toolchain on PATH" >&2
	exit 1
fi
mkdir -p bin
go build -o bin/nfqbench ./cmd/nfqbench
# exec: signals (Ctrl-C) reach nfqbench directly, which stops its
# children and deletes its network namespace before exiting.
exec bin/nfqbench "$@"

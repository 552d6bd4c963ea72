#!/bin/sh
# What `make run` needs from the system before it can build .venv: Python >= 3.11 with its venv
# module and ensurepip (Debian and Ubuntu split these off into the python3-venv package), make
# and git. Prints every missing piece and ONE command that installs them all, then exits 1.
#   usage: sh tools/check_prereqs.sh [python]     (default: python3)
PY="${1:-python3}"
missing_pkgs=""
problems=""

add() { problems="${problems}  - $1
"; missing_pkgs="${missing_pkgs} $2"; }

if ! command -v "$PY" >/dev/null 2>&1; then
    add "no Python interpreter '$PY' on PATH" "python3 python3-venv"
elif ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    version=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "?")
    add "'$PY' is Python $version; alnsfw needs 3.11 or newer (Debian 12 and Ubuntu 24.04
    ship it as python3; elsewhere install python3.11 and run: make run PYTHON=python3.11)" \
        "python3 python3-venv"
elif ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    add "'$PY' lacks the venv module or ensurepip, so 'python3 -m venv' cannot make .venv" \
        "python3-venv"
fi
command -v git >/dev/null 2>&1 || add "git is missing" "git"
command -v make >/dev/null 2>&1 || add "make is missing" "make"

[ -z "$problems" ] && exit 0

# one package list, duplicates removed, in a stable order
pkgs=$(printf '%s\n' $missing_pkgs | sort -u | tr '\n' ' ' | sed 's/ $//')
sudo=""
[ "$(id -u)" != 0 ] && sudo="sudo "
{
    echo "Missing system prerequisites:"
    printf '%s' "$problems"
    echo "Install them (Debian/Ubuntu; elsewhere the same packages from your package manager):"
    echo "    ${sudo}apt-get install -y $pkgs"
    echo "then run the make command again."
} >&2
exit 1

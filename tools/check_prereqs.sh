#!/bin/sh
# What `make run` needs from the system before it can build .venv: a Python that satisfies
# pyproject.toml's requires-python, with its venv module and ensurepip (Debian and Ubuntu split these off into the python3-venv package), make
# and git. Prints every missing piece and ONE command that installs them all, then exits 1 (a
# Python of the wrong version gets advice instead: apt cannot install another version).
#   usage: sh tools/check_prereqs.sh [python]     (default: python3)
PY="${1:-python3}"
PYPROJECT="$(dirname "$0")/../pyproject.toml"
# Does this Python satisfy pyproject.toml's requires-python (>=, <, <=, >, ==, != on X.Y[.Z])?
# Written for any Python 3, so an old one gets this message rather than a syntax error.
VERSION_CHECK='
import re, sys
spec = ">=3.11"
try:
    m = re.search(r"^requires-python\s*=\s*\"([^\"]*)\"", open(sys.argv[1]).read(), re.M)
    spec = m.group(1) if m else spec
except OSError:
    pass
have = sys.version_info[:3]
ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
       "<": lambda a, b: a < b, "==": lambda a, b: a[:len(b)] == b, "!=": lambda a, b: a[:len(b)] != b}
for part in spec.split(","):
    m = re.match(r"\s*(>=|<=|==|!=|>|<)\s*([0-9.]+)", part)
    if m and not ops[m.group(1)](have, tuple(int(x) for x in m.group(2).split("."))):
        sys.exit(1)
'
missing_pkgs=""
problems=""

add() { problems="${problems}  - $1
"; missing_pkgs="${missing_pkgs} $2"; }

if ! command -v "$PY" >/dev/null 2>&1; then
    add "no Python interpreter '$PY' on PATH" "python3 python3-venv"
elif ! "$PY" -c "$VERSION_CHECK" "$PYPROJECT" 2>/dev/null; then
    version=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "?")
    wanted=$(sed -n 's/^requires-python *= *"\(.*\)"/\1/p' "$PYPROJECT" 2>/dev/null)
    add "'$PY' is Python $version; alnsfw needs Python ${wanted:->=3.11} (pyproject.toml).
    Debian 12 ships 3.11 as python3 (apt-get install -y python3 python3-venv); elsewhere install
    a Python 3.11 and run: make run PYTHON=python3.11" ""
elif ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    add "'$PY' lacks the venv module or ensurepip, so 'python3 -m venv' cannot make .venv" \
        "python3-venv"
fi
command -v git >/dev/null 2>&1 || add "git is missing" "git"
command -v make >/dev/null 2>&1 || add "make is missing" "make"

[ -z "$problems" ] && exit 0

# one package list, duplicates removed, in a stable order
pkgs=$(printf '%s\n' $missing_pkgs | sed '/^$/d' | sort -u | tr '\n' ' ' | sed 's/ $//')
sudo=""
[ "$(id -u)" != 0 ] && sudo="sudo "
{
    echo "Missing system prerequisites:"
    printf '%s' "$problems"
    if [ -n "$pkgs" ]; then
        echo "Install them (Debian/Ubuntu; elsewhere the same packages from your package manager):"
        echo "    ${sudo}apt-get install -y $pkgs"
    fi
    echo "then run the make command again."
} >&2
exit 1

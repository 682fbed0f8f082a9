# Sourced by examples/*/run.sh: the options and surroundings every example shares.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"
#
# Before sourcing, a script may set
#   USAGE       its usage line (default: "[--tiny]")
#   TAKES_ARGS  1 when it accepts positional arguments (they land in ARGS)
#   PATH_VARS   names of environment variables holding paths (made absolute against the folder
#               run.sh was started from, before the script moves to the repository root)
# and then has
#   HERE    the example's folder        ROOT    the repository root (the working directory)
#   OUT     the output folder (EXAMPLE_OUT, default HERE/out), absolute, created
#   TINY    1 with --tiny (what CI runs), else 0
#   ARGS    the positional arguments    PYTHON  the Python with netspec installed
#   netspec the command (the installed script, else `$PYTHON -m netspec`)
#   PROGRESS  (--no-progress) with --tiny, else empty: pass as ${PROGRESS[@]+"${PROGRESS[@]}"}
# shellcheck shell=bash
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python}"
TINY=0
ARGS=()
for arg in "$@"; do
    case "$arg" in
        --tiny) TINY=1 ;;
        -*) echo "usage: $0 ${USAGE:-[--tiny]}" >&2; exit 2 ;;
        *)
            if [ "${TAKES_ARGS:-0}" != 1 ]; then
                echo "usage: $0 ${USAGE:-[--tiny]}" >&2; exit 2
            fi
            ARGS+=("$arg") ;;
    esac
done
PROGRESS=()
[ "$TINY" = 1 ] && PROGRESS=(--no-progress)
command -v netspec >/dev/null || netspec() { "$PYTHON" -m netspec "$@"; }

OUT="${EXAMPLE_OUT:-$HERE/out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
for name in ${PATH_VARS:-}; do
    value="${!name:-}"
    case "$value" in
        "" | /*) ;;
        *) printf -v "$name" '%s' "$PWD/$value" ;;
    esac
done
for (( i = 0; i < ${#ARGS[@]}; i++ )); do
    case "${ARGS[i]}" in /*) ;; *) ARGS[i]="$PWD/${ARGS[i]}" ;; esac
done
cd "$ROOT"
export COLUMNS="${COLUMNS:-120}"  # rich wraps its tables at 80 columns when not on a terminal

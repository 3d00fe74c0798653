#!/usr/bin/env bash
# The first `make run` as a user meets it: from no venv and no database to /health answering 200.
#
#   bench/first_run.sh [FOLDER]          # fresh venv in FOLDER (default: a new temporary folder)
#   KEEP_VENV=1 bench/first_run.sh DIR   # the same with DIR's venv in place: start-up alone
#
# The venv and the SQLite database live in FOLDER, never in the checkout; the server is stopped
# at the end. Prints the seconds to the first 200 and the venv's size.
set -euo pipefail
cd "$(dirname "$0")/.."
folder=${1:-$(mktemp -d /tmp/asteros-first-run.XXXX)}
port=${PORT:-18977}
venv="$folder/venv"
[ -n "${KEEP_VENV:-}" ] || rm -rf "$venv"
rm -f "$folder/db.sqlite3"
export DATABASE_URL="sqlite:///$folder/db.sqlite3" ASTEROS_ADMIN_PASSWORD=bench-only-password
start=$(date +%s.%N)
setsid make PYTHON="${PYTHON:-python3.11}" VENV="$venv" PORT="$port" run >"$folder/make-run.log" 2>&1 &
pid=$!
trap 'kill -- -$pid 2>/dev/null || true' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do
    kill -0 "$pid" 2>/dev/null || { echo "make run exited; see $folder/make-run.log"; exit 1; }
    sleep 0.2
done
end=$(date +%s.%N)
echo "make run to /health 200: $(echo "$end - $start" | bc) s"
du -sh "$venv"

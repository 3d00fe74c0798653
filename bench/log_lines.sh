#!/usr/bin/env bash
# Log lines one request writes: a 200 and a 404, on `runserver` (make run) and `asteros serve`.
#
#   bench/log_lines.sh [TREE]    # TREE: a checkout with a .venv (default: this one)
#
# Embedded mode, DEBUG=1 as make run sets it, a temporary SQLite database. Prints, for each
# server and request, how many lines the server's output gained in 1.5 s after one curl.
set -euo pipefail
tree=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$tree"
folder=$(mktemp -d /tmp/asteros-log-lines.XXXX)
export SECRET_KEY=bench-only DEBUG=1 DATABASE_URL="sqlite:///$folder/db.sqlite3" PYTHONUNBUFFERED=1
.venv/bin/python manage.py migrate -v0 >/dev/null 2>&1
for server in runserver serve; do
    port=$((18990 + RANDOM % 900))
    if [ "$server" = runserver ]; then
        command=(.venv/bin/python manage.py runserver "127.0.0.1:$port" --noreload)
    else
        command=(.venv/bin/python manage.py asteros serve --port "$port")
    fi
    setsid "${command[@]}" >"$folder/$server.log" 2>&1 &
    pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$port/api"; do sleep 0.2; done
    sleep 1
    for path in /api/agents /api/agents/nope; do
        before=$(wc -l <"$folder/$server.log")
        curl -s -o /dev/null "http://127.0.0.1:$port$path"
        sleep 1.5
        after=$(wc -l <"$folder/$server.log")
        echo "$server GET $path: $((after - before)) line(s)"
        tail -n $((after - before)) "$folder/$server.log" | cut -c1-160 | sed 's/^/    /'
    done
    kill -- -"$pid"
    sleep 1
done

#!/usr/bin/env bash
# Makes sure the local services the project uses are up: Redis (broker) always, PostgreSQL when
# asked (`services.sh postgres`). Starts them with the machine's own commands if they are down.
set -euo pipefail

redis_up() { "${PYTHON:-python3}" - <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", 6379), timeout=1); s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
PY
}

if ! redis_up; then
  echo "==> starting Redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 20); do redis_up && break; sleep 0.25; done
fi

if [ "${1:-}" = "postgres" ] && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "==> starting PostgreSQL on 127.0.0.1:5432"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 40); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.25; done
fi

#!/usr/bin/env bash
# Start the local PostgreSQL and RabbitMQ when they are installed here but stopped
# (used by `make run` and `.ci/run`). Does nothing for a server that answers, or that is not installed.
set -uo pipefail

if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null \
   && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  echo "starting the local PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if command -v rabbitmq-diagnostics >/dev/null && ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  echo "starting the local RabbitMQ"
  rabbitmq-server -detached || true
  for _ in $(seq 60); do rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 1; done
fi
exit 0

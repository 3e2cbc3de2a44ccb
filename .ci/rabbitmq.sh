#!/usr/bin/env bash
# RabbitMQ on 127.0.0.1:5672 (guest/guest) for the RabbitMQ-broker proof (tests/test_rabbitmq.py):
# installed from Debian's packages when missing (needs root), started when nothing answers on the port.
# Best effort: without it the proof skips locally (and fails under CI, where it must run).
set -uo pipefail
up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
up && exit 0
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "installing rabbitmq-server (apt-get)"
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server) >/dev/null 2>&1; then
    echo "warning: could not install rabbitmq-server; the RabbitMQ proof will not run" >&2
    exit 0
  fi
fi
up && exit 0  # the package's own service may have started it
echo "starting rabbitmq-server"
(cd /tmp && nohup rabbitmq-server >/tmp/sharer-rabbitmq.log 2>&1 &)
for _ in $(seq 1 120); do
  up && exit 0
  sleep 0.5
done
echo "warning: rabbitmq-server did not start on 127.0.0.1:5672 (see /tmp/sharer-rabbitmq.log)" >&2

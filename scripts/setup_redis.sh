#!/usr/bin/env bash
# Start the test Redis on 127.0.0.1:6379 when it is down (no persistence: the FIFO tests
# give every FIFO its own keys). Idempotent; run by scripts/test.sh.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
    echo "setup_redis: redis-server is not installed (apt-get install redis-server); the Redis FIFO tests will skip" >&2
    exit 0
fi
if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    exit 0
fi
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0
    sleep 0.1
done
echo "setup_redis: Redis did not answer on 127.0.0.1:6379" >&2
exit 1

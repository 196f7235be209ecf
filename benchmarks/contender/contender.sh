#!/usr/bin/env bash
# mailbot as a contender of the shared mail benchmark (interface: shared/bench/README.md).
#   contender.sh setup   untimed: config.toml in $BENCH_WORKDIR for the $BENCH_IMAP_* mailbox, `mailbot db upgrade`
#   contender.sh run     timed:   `mailbot poll --once` (fetch, read, decide, store, send the replies, flag)
#   contender.sh verify  untimed: one JSON line: cases, order numbers, body phrases, subjects vs manifest.jsonl
# The harness only looks in its own contenders/ folder: benchmarks/contender/compare.sh runs it with this
# folder linked in as contenders/mailbot. Needs the repo's .venv (python3 -m venv .venv && .venv/bin/pip
# install -e '.[test]').
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=${MAILBOT_VENV:-$REPO/.venv}
case "${1:-}" in
  setup)  exec "$VENV/bin/python" "$HERE/contender.py" setup ;;
  run)    export MAILBOT_SECRET_PM_IMAP="$BENCH_IMAP_PASSWORD"
          cd "$BENCH_WORKDIR"
          exec "$VENV/bin/mailbot" --config "$BENCH_WORKDIR/config.toml" poll --once ;;
  verify) exec "$VENV/bin/python" "$HERE/contender.py" verify ;;
  *) echo "usage: $0 setup|run|verify" >&2; exit 64 ;;
esac

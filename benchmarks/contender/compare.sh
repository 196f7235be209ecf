#!/usr/bin/env bash
# mailbot and django-helpdesk back to back in ONE invocation of the shared harness, on identical copies
# of the same mailbox and against the same SMTP capture server.
#
#   bash benchmarks/contender/compare.sh [N] [harness options]
#     default options: --runs 3 --contenders django_helpdesk,mailbot --skip-floor --skip-parse --skip-latency
#     (pass any option to replace them all; shared/bench/harness.py --help lists them)
#
# The harness only finds contenders in its own contenders/ folder and shared/ is read-only, so the
# bench folder is copied to a temporary directory with this folder linked in as contenders/mailbot.
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${MAILBOT_SHARED:-$REPO/../shared}
N=2000
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then N=$1; shift; fi
if [ $# -eq 0 ]; then
  set -- --runs 3 --contenders django_helpdesk,mailbot --skip-floor --skip-parse --skip-latency
fi
BENCH=$(mktemp -d /tmp/mailbench-harness-XXXXXX)
trap 'rm -rf "$BENCH"' EXIT
cp -r "$SHARED/bench/." "$BENCH/"
chmod -R u+w "$BENCH"
ln -s "$HERE" "$BENCH/contenders/mailbot"
bash "$BENCH/run_baseline.sh" "$N" "$@"

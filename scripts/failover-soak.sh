#!/usr/bin/env bash
# The failover soak: kills the primary of a Patroni formation N times (default 20) in a row under
# load, through the failover test (crates/orders/tests/failover.rs), which prints one line per
# kill (seconds from the kill to the next acknowledged command) and then checks, over the whole
# run: no acknowledged command lost, every lost answer resolved by a retry with its key, a dense
# feed, every Kafka message's event in the store at the position it carries, the read model and
# the relay caught up. Needs what the test suite needs (README, Testing): Patroni, tansu.
#
#   scripts/failover-soak.sh [KILLS]
#
# About 25 s per kill on 2 cores (3 s of load, the failover, the killed node rejoining): 20 kills
# take about 9 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-20}"
ORDERS_FAILOVER_KILLS="$kills" cargo nextest run -p orders --all-features --locked --profile soak \
  --test failover --no-capture --test-threads 1 \
  2>&1 | tee "target/failover-soak-$(date +%Y%m%d-%H%M%S).log"

#!/usr/bin/env bash
# Mutation testing (cargo-mutants) of the code whose tests are meant to catch every mutant: the
# pure cores. This file is the one list of what is mutated and how.
#
#   scripts/mutants.sh core    domain, event-store (without its conformance suite, which is test
#                              code) and the read-model engine's pure part: about 15 min
#   scripts/mutants.sh views   the pure parts of order-views, webhooks and orders (folds, fold
#                              driver, outbound rules, signatures, retry schedule, extractors,
#                              token verification, problem mapping): about 50 min
#   scripts/mutants.sh diff    both, limited to the functions changed since the commit in
#                              .ci/mutants-base (main when the current session began; each
#                              session writes it first): what CI runs. A checkout without that
#                              commit (a shallow clone) runs `core` instead.
#
# Fails (exit 2) when a mutant survives that .cargo/mutants.toml does not list as equivalent.
# Results in mutants.out/ (missed.txt lists survivors). The schedule of full runs and their last
# results: docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

VIEWS_PURE=(crates/order-views/src/view.rs crates/order-views/src/batch.rs
  crates/order-views/src/customers/mod.rs)
ORDERS_PURE=(crates/orders/src/http/extract.rs crates/orders/src/auth/token.rs
  crates/orders/src/http/problem.rs crates/orders/src/http/errors.rs)
WEBHOOKS_PURE=(crates/webhooks/src/outbound.rs crates/webhooks/src/signing.rs
  crates/webhooks/src/retry.rs)

# `files a b` → `--file a --file b`
files() { for f in "$@"; do printf -- '--file\n%s\n' "$f"; done; }

core() {
  cargo mutants "$@" -p domain
  cargo mutants "$@" -p event-store --all-features --exclude 'crates/event-store/src/conformance/**'
  cargo mutants "$@" -p read-model --file crates/read-model/src/apply.rs \
    --file crates/read-model/src/error.rs -- --lib
}

views() {
  mapfile -t views < <(files "${VIEWS_PURE[@]}")
  mapfile -t orders < <(files "${ORDERS_PURE[@]}")
  mapfile -t hooks < <(files "${WEBHOOKS_PURE[@]}")
  cargo mutants "$@" -p order-views "${views[@]}" -- --lib
  CARGO_PROFILE_DEV_DEBUG=false cargo mutants "$@" -p webhooks "${hooks[@]}" -- --lib
  # Each orders mutant rebuilds the orders library: two at a time, without debug info.
  CARGO_PROFILE_DEV_DEBUG=false cargo mutants "$@" -p orders --all-features -j 2 "${orders[@]}" -- --lib
}

case "${1:-}" in
  core) core ;;
  views) views ;;
  diff)
    base="${MUTANTS_BASE:-$(cat .ci/mutants-base)}"
    if ! git cat-file -e "${base}^{commit}" 2>/dev/null; then
      echo "the base commit ${base} is not in this checkout: mutating the whole core instead"
      core
      exit
    fi
    mkdir -p target
    diff="$PWD/target/mutants.diff"
    git diff "${base}" HEAD -- '*.rs' >"${diff}"
    echo "mutating the functions changed since ${base} ($(grep -c '^+++ ' "${diff}" || true) Rust files changed)"
    # A scope the diff does not touch ends at once ("No mutants to filter").
    core --in-diff "${diff}"
    views --in-diff "${diff}"
    ;;
  *)
    echo "usage: scripts/mutants.sh core|views|diff" >&2
    exit 64
    ;;
esac

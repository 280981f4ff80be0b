#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a bounded time, one after another:
#
#   fuzz/run.sh [SECONDS]     (default 30 per target)
#
# Each run starts from a copy of fuzz/corpus/<target>/ in a temporary directory, so the inputs
# libFuzzer adds never land in the repository. A crash (a panic, a failed assertion, a timeout or
# running out of memory) is saved by cargo fuzz under fuzz/artifacts/<target>/; the script says
# where, runs the remaining targets, and exits non-zero.
#
# Environment:
#   FUZZ_TOOLCHAIN  rustup toolchain to build with (default: nightly)
#   FUZZ_SANITIZER  none (default) or address. Our crates forbid unsafe code, so what the targets
#                   find are panics and failed assertions, which need no sanitizer; `address` also
#                   checks the unsafe code of dependencies, for a slower build and fewer executions.
#   FUZZ_CODEGEN_UNITS  codegen units per crate (default 16). cargo fuzz's own default, 1, gives
#                   slightly faster targets but leaves one of two cores idle on the larger crates.
#   FUZZ_TARGET_DIR  where to build (default fuzz/target); a directory outside the checkout
#                   keeps the build across fresh clones, as CI makes them
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: fuzz/run.sh [SECONDS]  (a whole number of seconds per target, default 30)" >&2
  exit 2
fi
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
sanitizer="${FUZZ_SANITIZER:-none}"
codegen_units="${FUZZ_CODEGEN_UNITS:-16}"

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh needs the $toolchain toolchain and cargo-fuzz:" >&2
  echo "  rustup toolchain install $toolchain && cargo install cargo-fuzz --locked" >&2
  exit 2
fi

# Build and run with the same options, so `run` finds the build done.
fuzz=(cargo "+$toolchain" fuzz)
options=(--sanitizer "$sanitizer" --debug-assertions --codegen-units "$codegen_units")
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then options+=(--target-dir "$FUZZ_TARGET_DIR"); fi

started=$(date +%s)
"${fuzz[@]}" build "${options[@]}"
echo "== built the fuzz targets in $(($(date +%s) - started)) s (toolchain $toolchain, sanitizer $sanitizer)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=()
for target in $("${fuzz[@]}" list); do
  corpus="$work/corpus/$target"
  mkdir -p "$corpus"
  if [ -d "fuzz/corpus/$target" ]; then cp -R "fuzz/corpus/$target/." "$corpus/"; fi
  seeds=$(find "$corpus" -type f | wc -l)
  log="$work/$target.log"
  echo "== $target: $seconds s from $seeds seeds"
  target_started=$(date +%s)
  status=0
  "${fuzz[@]}" run "${options[@]}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - target_started))
  # libFuzzer's final statistics: the executions, and the corpus it ended with.
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  done_line=$(grep -E '^Done [0-9]+ runs in' "$log" | tail -n1 || true)
  summary="$target: ran ${elapsed} s, ${executions:-?} executions (${per_second:-?}/s), corpus $seeds -> $(find "$corpus" -type f | wc -l)"
  if [ "$status" -eq 0 ]; then
    echo "   $summary; libFuzzer: ${done_line:-no final line}"
  else
    failed+=("$target")
    echo "   $summary; FAILED (exit $status):"
    # The panic (or libFuzzer's own error: a timeout, out of memory) and where it happened.
    grep -m1 -A6 -E "panicked at|ERROR: libFuzzer" "$log" | sed 's/^/   | /' || tail -n 20 "$log"
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
    if [ -n "$artifact" ]; then
      cp "$log" "$artifact.log"
      echo "   crashing input saved in $artifact (libFuzzer's output beside it, .log)"
      echo "   reproduce: ${fuzz[*]} run ${options[*]} $target $artifact"
    else
      echo "   no input was saved; libFuzzer's output ends:"
      tail -n 20 "$log" | sed 's/^/   | /'
    fi
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "== fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzzing found nothing in $seconds s per target"

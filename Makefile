# Developer shortcuts. Each target is one or two plain commands; read them rather than trust them.

# The PostgreSQL database `db-reset` recreates (and `migrate` uses, if set in the environment).
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/orders
# Extra flags for store-bench, e.g. `make bench BENCH_ARGS="--duration 5s"`.
BENCH_ARGS ?=
# Seconds each fuzz target runs, e.g. `make fuzz FUZZ_SECONDS=300`.
FUZZ_SECONDS ?= 30

.PHONY: help build test test-unit test-int schemathesis mutants mutants-orders fuzz soak ha-up ha-down fmt lint migrate db-reset dev docker-up docker-down bench

help:
	@echo "build        release build of the service (target/release/orders)"
	@echo "test         the whole test suite (needs PostgreSQL; see docs/testing.md)"
	@echo "test-unit    unit tests and doctests, no database"
	@echo "test-int     integration tests (needs PostgreSQL)"
	@echo "schemathesis the API against /openapi.json on both backends (scripts/schemathesis.sh)"
	@echo "mutants      mutation testing of domain, event-store and read-model (cargo install cargo-mutants --locked), about 15 min"
	@echo "mutants-orders mutation testing of the pure parts of order-views and orders, about 45 min"
	@echo "fuzz         the cargo-fuzz targets, FUZZ_SECONDS (30) each (nightly; cargo install cargo-fuzz --locked)"
	@echo "soak         kill the primary of a Patroni formation 20 times under load (scripts/failover-soak.sh, about 8 min)"
	@echo "ha-up        start the three-node Patroni formation on 127.0.0.1:55431-55433 (scripts/ha-cluster.sh)"
	@echo "ha-down      stop it and delete its data"
	@echo "fmt          format the code"
	@echo "lint         check formatting and run clippy with warnings as errors"
	@echo "migrate      apply migrations to DATABASE_URL (unset: the embedded SQLite file)"
	@echo "db-reset     drop and recreate the PostgreSQL database named by DATABASE_URL"
	@echo "dev          run the service (debug build)"
	@echo "docker-up    start PostgreSQL, Redis, Kafka, Kafka UI and pgAdmin"
	@echo "docker-down  stop them (volumes are kept)"
	@echo "bench        store-bench: event store appends against raw inserts"

build:
	cargo build --release

test:
	cargo nextest run --workspace --all-features
	# Tests that only exist without a feature (the OTLP refusal in common); --all-features drops them.
	cargo nextest run -p common

test-unit:
	cargo nextest run --workspace --lib --bins
	cargo test --workspace --doc

test-int:
	cargo nextest run --workspace --all-features --test '*'

# The service against its API document, on SQLite and PostgreSQL (installs schemathesis if missing).
schemathesis:
	scripts/schemathesis.sh

# Mutation testing: cargo-mutants breaks the code one small change at a time and expects a test
# to fail each time. scripts/mutants.sh is the one list of what is mutated (docs/testing.md).
mutants:
	scripts/mutants.sh core

mutants-orders:
	scripts/mutants.sh views

# Fuzzing: every target in fuzz/fuzz_targets for FUZZ_SECONDS each, from copies of the seed corpora
# in fuzz/corpus. A crashing input is kept in fuzz/artifacts/<target>/ (see fuzz/run.sh).
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

# High availability: the Patroni formation of ADR 0020 and the failover soak.
soak:
	scripts/failover-soak.sh 20

ha-up:
	scripts/ha-cluster.sh start

ha-down:
	scripts/ha-cluster.sh destroy

fmt:
	cargo fmt --all

lint:
	cargo fmt --all --check && cargo clippy --workspace --all-targets --all-features -- -D warnings

migrate:
	cargo run --release -- migrate

# Drops and recreates the database named by DATABASE_URL (default: `orders` on
# postgres@127.0.0.1:5432), connecting to the `postgres` database of the same server. Terminates
# open connections to it first. Every event in it is lost.
db-reset:
	@db="$$(printf '%s' '$(DATABASE_URL)' | sed -E 's#^[^?]*/([^/?]+)(\?.*)?$$#\1#')"; \
	server="$$(printf '%s' '$(DATABASE_URL)' | sed -E 's#^([^?]*/)[^/?]+(\?.*)?$$#\1postgres\2#')"; \
	echo "recreating database $$db"; \
	dropdb --if-exists --force --maintenance-db="$$server" "$$db" && \
	createdb --maintenance-db="$$server" "$$db"

dev:
	cargo run

docker-up:
	docker compose up -d

docker-down:
	docker compose down

bench:
	cargo run --release -p bench --bin store-bench -- $(BENCH_ARGS)

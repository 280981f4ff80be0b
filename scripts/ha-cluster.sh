#!/usr/bin/env bash
# ha-cluster.sh - a private 3-node PostgreSQL 15 HA formation managed by
# Patroni 3.0.2 on loopback, for failover experiments with the orders service.
#
# Commands:
#   start              write the 3 Patroni configs (n1 n2 n3), start every patroni
#                      that is not running (an existing formation is reused), wait
#                      (ORDERS_HA_WAIT s, default 120) for 1 leader + 2 streaming
#                      replicas, one of them 'sync'; print the client URL.
#   stop               SIGTERM the patronis (replicas first, leader last), then
#                      pg_ctl stop / kill -9 whatever is left (postmasters found via
#                      postmaster.pid). Keeps ORDERS_HA_DIR.
#   destroy            stop, then rm -rf ORDERS_HA_DIR.
#   status             patronictl list + the leader's pg_stat_replication.
#   url                postgres://postgres@h:P1,h:P2,h:P3/postgres?target_session_attrs=read-write
#   primary            PostgreSQL port of the leader (REST GET /primary is 200 only there).
#   standby            PostgreSQL port of the synchronous standby (REST GET /sync).
#   kill-primary       kill -9 the leader's patroni and its postmaster process group.
#   kill-node N...     same for nodes given by name (n1..n3) or PostgreSQL port.
#   start-node N...    start those nodes' patroni again; waits until each streams
#                      from the leader (an old leader is pg_rewind-ed by Patroni).
#   ctl ARGS...        patronictl -c <n1 config> ARGS (e.g. pause, resume, switchover).
#
# Environment:
#   ORDERS_HA_DIR   (/tmp/orders-ha) configs, data, raft, logs, pid files, sockets.
#   ORDERS_HA_PORT  (55431) PostgreSQL PORT..PORT+2, REST API +100..+102, Raft +200..+202.
#   ORDERS_HA_FSYNC (on) PostgreSQL fsync. 'off' is acceptable for tests only: kill -9
#                   of a process keeps the OS page cache, so nothing written is lost;
#                   a power loss or kernel crash would corrupt the cluster. Never 'off'
#                   for real use. Only applied when the formation is bootstrapped.
#   ORDERS_HA_WAIT  (120) seconds to wait for health in start / start-node.
#
# Patroni settings (bootstrap.dcs, stored in the DCS at bootstrap):
#   DCS = Patroni's built-in Raft (pysyncobj): no etcd needed; each patroni is a
#     Raft member, so 2 of the 3 patroni processes must be alive for any DCS write;
#     a leader left alone cannot renew its key and demotes itself (read-only).
#   ttl 10 / loop_wait 2 / retry_timeout 4: the leader key expires 10 s after the
#     leader's last refresh: a killed leader was promoted away ~9 s after the
#     kill and writes resumed after ~11-12 s (measured on loopback). Patroni
#     needs loop_wait + 2*retry_timeout <= ttl (2 + 8 = 10).
#   synchronous_mode + synchronous_mode_strict, synchronous_node_count 1: every
#     commit waits for one standby, only that standby may be promoted (no lost
#     acknowledged writes); strict = with no standby left the leader sets
#     synchronous_standby_names='*' and writes block instead of going async.
#   use_pg_rewind (+ wal_log_hints on): a killed old leader rejoins as a replica by
#     rewinding instead of a new base backup. use_slots: a replication slot per
#     member, so the primary keeps WAL that a stopped replica still needs.
#   parameters: wal_level replica, hot_standby on, max_wal_senders 10,
#     max_replication_slots 10, synchronous_commit on, max_connections 200.
#     wal_retrieve_retry_interval 1s (default 5s): after a failover the surviving
#     replica's first connection to the new leader fails ("replication slot does
#     not exist" until Patroni creates the slots) and it only retries after this
#     interval; with strict mode writes wait for it, so 1s saves ~3 s per failover.
#   Local: listen/connect on 127.0.0.1 only, unix sockets in ORDERS_HA_DIR/run,
#     pg_hba trust for local + 127.0.0.1/32 (all and replication), superuser
#     postgres, replication user replicator, watchdog off (no /dev/watchdog here;
#     use one in production), pgpass per node (not ~postgres/.pgpass).
# PostgreSQL and Patroni run as user postgres (runuser when we are root).
# Needs: patroni, patronictl, psql, curl, jq.
set -euo pipefail

DIR=${ORDERS_HA_DIR:-/tmp/orders-ha}
BASE=${ORDERS_HA_PORT:-55431}
FSYNC=${ORDERS_HA_FSYNC:-on}
WAIT=${ORDERS_HA_WAIT:-120}
BIN=/usr/lib/postgresql/15/bin
export PGCONNECT_TIMEOUT=2

die() { echo "ha-cluster: $*" >&2; exit 1; }
case $FSYNC in on|off) ;; *) die "ORDERS_HA_FSYNC must be on or off" ;; esac
[[ $BASE =~ ^[0-9]+$ ]] || die "ORDERS_HA_PORT must be a number"
for t in patroni patronictl psql curl jq; do command -v $t >/dev/null || die "$t not installed"; done

if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); else AS_PG=(); fi
as_pg() { (cd / && "${AS_PG[@]}" "$@"); }

name()  { echo "n$(($1 + 1))"; }            # node index 0..2 -> n1..n3
pgp()   { echo $((BASE + $1)); }
apip()  { echo $((BASE + 100 + $1)); }
raftp() { echo $((BASE + 200 + $1)); }
nd()    { echo "$DIR/$(name "$1")"; }
sql()   { psql -X -q -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }
now()   { date +%H:%M:%S.%3N; }

url() {
  echo "postgres://postgres@127.0.0.1:$(pgp 0),127.0.0.1:$(pgp 1),127.0.0.1:$(pgp 2)/postgres?target_session_attrs=read-write"
}

node_index() {  # n1|n2|n3|pg-port -> 0..2
  local i
  for i in 0 1 2; do
    if [ "$1" = "$(name $i)" ] || [ "$1" = "$(pgp $i)" ]; then echo $i; return; fi
  done
  die "unknown node '$1' (use n1..n3 or $(pgp 0)..$(pgp 2))"
}

cmdline_has() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"; }

patroni_pid() {  # pid of node $1's patroni, if running
  local p; p=$(cat "$(nd "$1")/patroni.pid" 2>/dev/null) || return 0
  if cmdline_has "$p" "$(nd "$1")/patroni.yml"; then echo "$p"; fi
}

postmaster_pid() {  # pid of node $1's postmaster, if running
  local p; p=$(head -n1 "$(nd "$1")/data/postmaster.pid" 2>/dev/null) || return 0
  if [ -n "$p" ] && cmdline_has "$p" "$(nd "$1")/data"; then echo "$p"; fi
}

kill_tree() {  # kill -9 a process, its children and its process group (if not ours).
  # PostgreSQL backends call setsid(), so they are found via the parent pid; the
  # SIGSTOP first keeps the postmaster from forking while we collect them.
  local pid=$1 pg kids
  kill -STOP "$pid" 2>/dev/null || true
  pg=$(ps -o pgid= -p "$pid" | tr -d ' ') || true
  kids=$(pgrep -P "$pid" || true)
  if [ -n "$pg" ] && [ "$pg" != 1 ] && [ "$pg" != "$(ps -o pgid= -p $$ | tr -d ' ')" ]; then
    kill -9 -- "-$pg" 2>/dev/null || true
  fi
  # shellcheck disable=SC2086
  kill -9 "$pid" $kids 2>/dev/null || true
}

api_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$(apip "$1")$2")" = 200 ]; }

leader_index() {
  local i
  for i in 0 1 2; do if api_ok $i /primary; then echo $i; return 0; fi; done
  return 1
}

write_config() {
  local i=$1 d; d=$(nd "$1")
  local others=() j
  for j in 0 1 2; do [ "$j" = "$i" ] || others+=("'127.0.0.1:$(raftp "$j")'"); done
  mkdir -p "$d/raft" "$DIR/run"
  [ -d "$d/data" ] || mkdir -m 0700 "$d/data"
  cat >"$d/patroni.yml" <<EOF
# generated by scripts/ha-cluster.sh - see its header for the reasoning
scope: orders-ha
name: $(name "$i")
log: {level: INFO}
restapi:
  listen: 127.0.0.1:$(apip "$i")
  connect_address: 127.0.0.1:$(apip "$i")
raft:
  data_dir: $d/raft
  self_addr: '127.0.0.1:$(raftp "$i")'
  partner_addrs: [${others[0]}, ${others[1]}]
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    synchronous_mode: true
    synchronous_mode_strict: true
    synchronous_node_count: 1
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        synchronous_commit: 'on'
        max_connections: 200
        fsync: '$FSYNC'
        wal_retrieve_retry_interval: 1s
  initdb:
    - auth: trust
    - encoding: UTF8
postgresql:
  listen: 127.0.0.1:$(pgp "$i")
  connect_address: 127.0.0.1:$(pgp "$i")
  data_dir: $d/data
  bin_dir: $BIN
  pgpass: $d/pgpass
  authentication:
    superuser: {username: postgres, password: postgres}
    replication: {username: replicator, password: replicator}
  parameters:
    unix_socket_directories: '$DIR/run'
  pg_hba:
    - local all all trust
    - local replication all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
  basebackup:
    - checkpoint: fast
watchdog:
  mode: 'off'
EOF
}

fix_perms() {
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$DIR"; fi
  chmod 0700 "$DIR"/n?/data
}

start_node() {  # start node $1's patroni in the background unless it runs
  local i=$1 d; d=$(nd "$1")
  if [ -n "$(patroni_pid "$i")" ]; then echo "$(name "$i") already running"; return; fi
  rm -f "$d/patroni.pid"
  setsid nohup "${AS_PG[@]}" sh -c 'echo $$ >"$1"; exec patroni "$2"' sh \
    "$d/patroni.pid" "$d/patroni.yml" >>"$d/patroni.log" 2>&1 </dev/null &
  local n=0
  until [ -n "$(patroni_pid "$i")" ]; do
    n=$((n + 1)); [ $n -lt 50 ] || die "$(name "$i") did not start, see $d/patroni.log"; sleep 0.1
  done
  echo "$(now) started $(name "$i") patroni pid $(patroni_pid "$i") (pg $(pgp "$i"), api $(apip "$i"), raft $(raftp "$i"))"
}

healthy() {  # 1 leader + 2 running members (one sync_standby), 2 streaming / 1 sync in pg
  local l; l=$(leader_index) || return 1
  curl -s --max-time 2 "http://127.0.0.1:$(apip "$l")/cluster" | jq -e '
    ([.members[] | select(.state == "running")] | length) == 3 and
    ([.members[] | select(.role == "sync_standby")] | length) == 1' >/dev/null || return 1
  [ "$(sql "$(pgp "$l")" "select count(*) filter (where state = 'streaming') || '/' ||
       count(*) filter (where sync_state = 'sync') from pg_stat_replication" 2>/dev/null)" = 2/1 ]
}

streaming() {  # node $1 streams from the current leader
  local l; l=$(leader_index) || return 1
  [ "$(sql "$(pgp "$l")" "select count(*) from pg_stat_replication
       where application_name = '$(name "$1")' and state = 'streaming'" 2>/dev/null)" = 1 ]
}

wait_for() {  # wait_for DESCRIPTION COMMAND...
  local what=$1 t0=$SECONDS; shift
  until "$@"; do
    if [ $((SECONDS - t0)) -ge "$WAIT" ]; then
      echo "ha-cluster: timed out after ${WAIT}s waiting for $what" >&2
      for d in "$DIR"/n?; do echo "==== $d/patroni.log" >&2; tail -n 25 "$d/patroni.log" >&2 || true; done
      exit 1
    fi
    sleep 1
  done
  echo "$(now) $what after $((SECONDS - t0))s"
}

kill_node() {
  local i=$1 pp pm
  pp=$(patroni_pid "$i"); pm=$(postmaster_pid "$i")
  [ -n "$pp$pm" ] || die "$(name "$i") is not running"
  if [ -n "$pp" ]; then kill_tree "$pp"; fi   # patroni first, so it cannot restart postgres
  if [ -n "$pm" ]; then kill_tree "$pm"; fi   # then the postmaster and its backends
  rm -f "$(nd "$i")/patroni.pid"
  echo "$(now) killed $(name "$i") port $(pgp "$i") (patroni ${pp:--}, postmaster ${pm:--}) at $(date +%s.%N)"
}

cmd_start() {
  mkdir -p "$DIR"; touch "$DIR/.orders-ha"
  local i
  for i in 0 1 2; do write_config $i; done
  fix_perms
  for i in 0 1 2; do start_node $i; done
  wait_for "healthy: 1 leader, 2 streaming replicas, 1 sync" healthy
  url
}

stop_patroni() {  # SIGTERM node $1's patroni (it stops its postgres), wait <= 30 s
  local p n=0; p=$(patroni_pid "$1"); [ -n "$p" ] || return 0
  echo "$(now) SIGTERM $(name "$1") patroni $p"; kill -TERM "$p" 2>/dev/null || true
  while [ -n "$(patroni_pid "$1")" ] && [ $n -lt 30 ]; do sleep 1; n=$((n + 1)); done
}

cmd_stop() {
  [ -d "$DIR" ] || return 0
  local l i p
  l=$(leader_index) || l=""
  for i in 0 1 2; do [ "$i" = "$l" ] || stop_patroni $i; done  # replicas first: no takeover
  [ -z "$l" ] || stop_patroni "$l"
  for i in 0 1 2; do  # leftovers: kill -9 patroni; pg_ctl stop, then kill -9 the postmaster
    p=$(patroni_pid $i); if [ -n "$p" ]; then echo "kill -9 $(name $i) patroni $p"; kill_tree "$p"; fi
    if [ -n "$(postmaster_pid $i)" ]; then
      as_pg "$BIN/pg_ctl" -D "$(nd $i)/data" stop -m fast -t 10 >/dev/null 2>&1 || true
      p=$(postmaster_pid $i); if [ -n "$p" ]; then echo "kill -9 $(name $i) postmaster $p"; kill_tree "$p"; fi
    fi
    rm -f "$(nd $i)/patroni.pid"
  done
  echo "$(now) stopped"
}

cmd_destroy() {
  case $DIR in /|"") die "refusing to remove '$DIR'" ;; esac
  if [ -e "$DIR" ] && [ ! -e "$DIR/.orders-ha" ]; then die "$DIR was not created by this script"; fi
  cmd_stop
  rm -rf "$DIR"
  echo "removed $DIR"
}

cmd_status() {
  as_pg patronictl -c "$(nd 0)/patroni.yml" list || true
  local l; l=$(leader_index) || { echo "no leader"; return 0; }
  sql "$(pgp "$l")" "select 'synchronous_standby_names=' || current_setting('synchronous_standby_names')"
  psql -X -h 127.0.0.1 -p "$(pgp "$l")" -U postgres -d postgres -c \
    "select application_name, state, sync_state, replay_lag from pg_stat_replication order by 1"
}

cmd=${1:-}; shift || true
case $cmd in
  start) cmd_start ;;
  stop) cmd_stop ;;
  destroy) cmd_destroy ;;
  status) cmd_status ;;
  url) url ;;
  primary) l=$(leader_index) || die "no leader"; pgp "$l" ;;
  standby)
    for i in 0 1 2; do if api_ok $i /sync; then pgp $i; exit 0; fi; done
    die "no synchronous standby" ;;
  kill-primary) l=$(leader_index) || die "no leader"; kill_node "$l" ;;
  kill-node | start-node)
    [ $# -gt 0 ] || die "usage: $0 $cmd NAME|PORT..."
    idx=(); for a in "$@"; do i=$(node_index "$a"); idx+=("$i"); done  # exits on a bad name
    if [ "$cmd" = kill-node ]; then
      for i in "${idx[@]}"; do kill_node "$i"; done
    else
      [ -f "$DIR/.orders-ha" ] || die "no formation in $DIR; run start"
      for i in "${idx[@]}"; do write_config "$i"; done
      fix_perms
      for i in "${idx[@]}"; do start_node "$i"; done
      for i in "${idx[@]}"; do wait_for "$(name "$i") streaming" streaming "$i"; done
    fi ;;
  ctl) as_pg patronictl -c "$(nd 0)/patroni.yml" "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac

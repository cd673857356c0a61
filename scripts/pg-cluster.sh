#!/usr/bin/env bash
# A PostgreSQL cluster for the issuer's log on one machine: a primary and
# two synchronous standbys on loopback ports, in one directory.
#
#   scripts/pg-cluster.sh start      create (initdb, pg_basebackup) or restart the nodes
#   scripts/pg-cluster.sh stop       stop every node
#   scripts/pg-cluster.sh status     each node's state and role; the primary's standbys
#   scripts/pg-cluster.sh failover   fence the primary, promote the standby that
#                                    received the most WAL, re-point the other to it
#   scripts/pg-cluster.sh kill NODE  kill -9 a node's postmaster (fault tests)
#   scripts/pg-cluster.sh isolate    cut the primary off from its standbys (fault
#                                    tests): each standby's walreceiver is pointed at
#                                    a port nobody serves; the nodes keep running
#   scripts/pg-cluster.sh rejoin     point the standbys at the primary again
#   scripts/pg-cluster.sh url issuer|auditor|admin
#
# Environment: PG_CLUSTER_DIR (default $TMPDIR/vc-pg-cluster), PG_CLUSTER_PORT
# (the first of three ports, default 55432), PG_BIN (default
# /usr/lib/postgresql/15/bin). Nodes: p (port), s1 (port+1), s2 (port+2).
#
# Every commit on the primary waits until one standby has flushed it
# (synchronous_commit = on, synchronous_standby_names = 'ANY 1 (s1, s2)'):
# an acknowledged commit is on two disks. With both standbys lost the
# primary acknowledges nothing.
#
# DIR/cluster.env (0600) holds the URLs: VC_PG_ISSUER_URL (the role that
# owns the log, every node listed, target_session_attrs=read-write, so a
# client finds the primary after a fail-over), VC_PG_AUDITOR_URL (a role
# that may only read the log), VC_PG_ADMIN_URL (the superuser, for tests
# that create databases).
#
# Fail-over: the old primary is stopped (immediate) and fenced (a FENCED
# file: `start` never starts it again; it would need pg_rewind or a new
# base backup to rejoin), then the standby with the highest received WAL
# position is promoted, so nothing a commit was acknowledged for is lost
# (ANY 1: at least one standby has every acknowledged commit, and the
# one that received most has them all).
#
# initdb and pg_basebackup run with --no-sync (a machine crash during
# `start` leaves a cluster to make again); from then on every node fsyncs.
#
# PostgreSQL refuses to run as root: as root, the nodes run as the
# `postgres` user (runuser).
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DIR=${PG_CLUSTER_DIR:-${TMPDIR:-/tmp}/vc-pg-cluster}
PORT=${PG_CLUSTER_PORT:-55432}
NODES=(p s1 s2)
DB=varietycash

port_of() {
  case "$1" in
    p) echo "$PORT" ;;
    s1) echo $((PORT + 1)) ;;
    s2) echo $((PORT + 2)) ;;
    *) echo "unknown node $1 (p, s1, s2)" >&2; exit 2 ;;
  esac
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# psql as the superuser over the node's Unix socket (trusted locally).
sql() {
  local node=$1
  shift
  as_pg "$PG_BIN/psql" -X -q -At -h "$DIR" -p "$(port_of "$node")" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 "$@"
}

running() {
  as_pg "$PG_BIN/pg_ctl" status -D "$DIR/$1" >/dev/null 2>&1
}

start_node() {
  local node=$1
  if [ -e "$DIR/$node/FENCED" ]; then
    echo "$node is fenced (a former primary): not started" >&2
    return 0
  fi
  if ! running "$node"; then
    as_pg "$PG_BIN/pg_ctl" start -w -t 60 -D "$DIR/$node" -l "$DIR/$node.log" >/dev/null
  fi
}

password() {
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n'
}

primary() {
  cat "$DIR/primary"
}

write_env() {
  local hosts="127.0.0.1:$(port_of p),127.0.0.1:$(port_of s1),127.0.0.1:$(port_of s2)"
  local primary_port
  primary_port=$(port_of "$(primary)")
  umask 077
  cat >"$DIR/cluster.env" <<EOF
VC_PG_ISSUER_URL='postgres://vc_issuer:$(cat "$DIR/secrets/vc_issuer")@$hosts/$DB?target_session_attrs=read-write'
VC_PG_AUDITOR_URL='postgres://vc_auditor:$(cat "$DIR/secrets/vc_auditor")@$hosts/$DB'
VC_PG_ADMIN_URL='postgres://postgres:$(cat "$DIR/secrets/postgres")@127.0.0.1:$primary_port/postgres'
EOF
}

create() {
  mkdir -p "$DIR/secrets"
  chmod 700 "$DIR" "$DIR/secrets"
  for role in postgres replicator vc_issuer vc_auditor; do
    password >"$DIR/secrets/$role"
  done
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$DIR"; fi
  as_pg "$PG_BIN/initdb" -D "$DIR/p" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$DIR/secrets/postgres" --no-sync >"$DIR/initdb.log"
  cat >>"$DIR/p/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $(port_of p)
unix_socket_directories = '$DIR'
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
fsync = on
synchronous_commit = on
synchronous_standby_names = 'ANY 1 (s1, s2)'
EOF
  cat >"$DIR/p/pg_hba.conf" <<EOF
local all postgres trust
local replication postgres trust
host replication replicator 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
EOF
  echo p >"$DIR/primary"
  start_node p
  # Until the standbys stream, a synchronous commit would wait forever:
  # the setup commits locally.
  PGOPTIONS='-c synchronous_commit=local' sql p <<EOF
CREATE ROLE replicator REPLICATION LOGIN PASSWORD '$(cat "$DIR/secrets/replicator")';
CREATE ROLE vc_issuer LOGIN PASSWORD '$(cat "$DIR/secrets/vc_issuer")';
CREATE ROLE vc_log_reader NOLOGIN;
CREATE ROLE vc_auditor LOGIN PASSWORD '$(cat "$DIR/secrets/vc_auditor")' IN ROLE vc_log_reader;
CREATE DATABASE $DB OWNER vc_issuer;
REVOKE ALL ON DATABASE $DB FROM PUBLIC;
GRANT CONNECT ON DATABASE $DB TO vc_issuer, vc_log_reader;
EOF
  for node in s1 s2; do
    as_pg env PGPASSWORD="$(cat "$DIR/secrets/replicator")" \
      "$PG_BIN/pg_basebackup" -D "$DIR/$node" -h 127.0.0.1 -p "$(port_of p)" -U replicator \
      -X stream -R -c fast --no-sync >/dev/null
    cat >>"$DIR/$node/postgresql.auto.conf" <<EOF
port = $(port_of "$node")
primary_conninfo = 'host=127.0.0.1 port=$(port_of p) user=replicator password=$(cat "$DIR/secrets/replicator") application_name=$node'
EOF
    start_node "$node"
  done
}

wait_for_standbys() {
  local want=$1 i n
  for i in $(seq 1 100); do
    n=$(sql "$(primary)" -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')")
    if [ "$n" -ge "$want" ]; then return 0; fi
    sleep 0.2
  done
  echo "the primary has $n synchronous standbys streaming, not $want" >&2
  return 1
}

cmd_start() {
  if [ ! -e "$DIR/primary" ]; then
    create
  else
    start_node "$(primary)"
    for node in "${NODES[@]}"; do start_node "$node"; done
  fi
  write_env
  local standbys=0
  for node in "${NODES[@]}"; do
    if [ "$node" != "$(primary)" ] && [ ! -e "$DIR/$node/FENCED" ]; then standbys=$((standbys + 1)); fi
  done
  wait_for_standbys "$standbys"
  echo "cluster in $DIR: primary $(primary) on port $(port_of "$(primary)"), $standbys synchronous standbys; URLs in $DIR/cluster.env"
}

cmd_stop() {
  [ -d "$DIR" ] || return 0
  for node in "${NODES[@]}"; do
    if [ -d "$DIR/$node" ] && running "$node"; then
      as_pg "$PG_BIN/pg_ctl" stop -w -D "$DIR/$node" -m fast >/dev/null
    fi
  done
  echo "cluster in $DIR stopped"
}

cmd_status() {
  [ -e "$DIR/primary" ] || { echo "no cluster in $DIR"; return 1; }
  for node in "${NODES[@]}"; do
    local state role
    if [ -e "$DIR/$node/FENCED" ]; then
      state=fenced
    elif running "$node"; then
      state=running
    else
      state=stopped
    fi
    role=-
    if [ "$state" = running ]; then
      if [ "$(sql "$node" -c 'SELECT pg_is_in_recovery()')" = t ]; then role=standby; else role=primary; fi
    fi
    echo "$node port $(port_of "$node") $state $role"
  done
  if running "$(primary)"; then
    sql "$(primary)" -c "SELECT 'standby ' || application_name || ' ' || state || ' ' || sync_state FROM pg_stat_replication ORDER BY application_name"
  fi
}

cmd_kill() {
  local node=$1 pid
  pid=$(head -1 "$DIR/$node/postmaster.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  # The backends die with their postmaster; wait until none holds the port.
  for _ in $(seq 1 50); do
    running "$node" || break
    sleep 0.1
  done
}

# Points each running standby's walreceiver at port $2 of 127.0.0.1 (the
# primary's, or one nobody listens on) and reloads it: PostgreSQL restarts
# the walreceiver with the new primary_conninfo.
point_standbys() {
  local target_port=$1 node
  for node in "${NODES[@]}"; do
    [ "$node" = "$(primary)" ] && continue
    [ -e "$DIR/$node/FENCED" ] && continue
    running "$node" || continue
    sql "$node" -c "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=$target_port user=replicator password=$(cat "$DIR/secrets/replicator") application_name=$node'" \
      -c 'SELECT pg_reload_conf()' >/dev/null
  done
}

cmd_isolate() {
  # Port 1 on loopback: nothing serves it, the connection is refused at once.
  point_standbys 1
  local i n
  for i in $(seq 1 100); do
    n=$(sql "$(primary)" -c "SELECT count(*) FROM pg_stat_replication")
    if [ "$n" = 0 ]; then
      echo "primary $(primary) cut off from its standbys"
      return 0
    fi
    # A walsender whose standby reconnects elsewhere ends when its
    # connection does; make it end now.
    sql "$(primary)" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_replication" >/dev/null
    sleep 0.1
  done
  echo "the primary still has $n standbys connected" >&2
  return 1
}

cmd_rejoin() {
  point_standbys "$(port_of "$(primary)")"
  local standbys=0 node
  for node in "${NODES[@]}"; do
    if [ "$node" != "$(primary)" ] && [ ! -e "$DIR/$node/FENCED" ] && running "$node"; then
      standbys=$((standbys + 1))
    fi
  done
  wait_for_standbys "$standbys"
  echo "primary $(primary) has $standbys synchronous standbys again"
}

cmd_failover() {
  local old new best_lsn node lsn
  old=$(primary)
  # Fence first: the old primary must never acknowledge again.
  if running "$old"; then
    as_pg "$PG_BIN/pg_ctl" stop -w -D "$DIR/$old" -m immediate >/dev/null || cmd_kill "$old"
  fi
  touch "$DIR/$old/FENCED"
  new=
  best_lsn=
  for node in "${NODES[@]}"; do
    [ "$node" = "$old" ] && continue
    [ -e "$DIR/$node/FENCED" ] && continue
    running "$node" || continue
    lsn=$(sql "$node" -c 'SELECT pg_last_wal_receive_lsn()')
    if [ -z "$new" ] || [ "$(sql "$node" -c "SELECT pg_wal_lsn_diff('$lsn', '$best_lsn') > 0")" = t ]; then
      new=$node
      best_lsn=$lsn
    fi
  done
  if [ -z "$new" ]; then
    echo "no running standby to promote" >&2
    exit 1
  fi
  as_pg "$PG_BIN/pg_ctl" promote -w -D "$DIR/$new" >/dev/null
  echo "$new" >"$DIR/primary"
  point_standbys "$(port_of "$new")"
  write_env
  echo "fenced $old, promoted $new (received WAL up to $best_lsn)"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  failover) cmd_failover ;;
  kill) cmd_kill "${2:?kill NODE}" ;;
  isolate) cmd_isolate ;;
  rejoin) cmd_rejoin ;;
  url)
    # shellcheck disable=SC1091
    . "$DIR/cluster.env"
    case "${2:-}" in
      issuer) echo "$VC_PG_ISSUER_URL" ;;
      auditor) echo "$VC_PG_AUDITOR_URL" ;;
      admin) echo "$VC_PG_ADMIN_URL" ;;
      *) echo "url issuer|auditor|admin" >&2; exit 2 ;;
    esac
    ;;
  *)
    echo "usage: $0 start|stop|status|failover|kill NODE|isolate|rejoin|url issuer|auditor|admin" >&2
    exit 2
    ;;
esac

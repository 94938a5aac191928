#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests.
#
#   .ci/pg-cluster.sh start DIR   initdb + start a cluster in DIR on a free loopback port;
#                                 prints its DATABASE_URL, and nothing else, on stdout
#   .ci/pg-cluster.sh stop DIR    stop that cluster and remove DIR
#   .ci/pg-cluster.sh url DIR     print the DATABASE_URL of a running cluster in DIR
#
# Typical use:
#   dir=$(mktemp -d)
#   trap '.ci/pg-cluster.sh stop "$dir"' EXIT
#   DATABASE_URL=$(.ci/pg-cluster.sh start "$dir")
#
# The cluster trusts every connection, listens on 127.0.0.1 only (plus a unix socket inside
# DIR) and runs with fsync=off: it is for tests and must never hold data anyone cares about.
#
# PostgreSQL binaries: $PG_BINDIR if set, else `pg_config --bindir`, else the newest
# /usr/lib/postgresql/*/bin; when none works and we are root on Debian/Ubuntu, the
# `postgresql` package is installed with apt-get. PostgreSQL refuses to run as root, so as
# root the server runs as the `postgres` system user (created when missing).
#
# Progress and errors go to stderr; the server log is DIR/postgres.log.
set -euo pipefail

readonly PROG=pg-cluster
readonly MARKER=.pg-cluster          # marks a DIR this script created; `stop` only deletes such dirs
readonly START_ATTEMPTS=5
readonly READY_TIMEOUT=60            # seconds

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# --- PostgreSQL binaries --------------------------------------------------------------------

# A bindir is usable when its server programs actually run (not just exist).
bindir_works() {
  local dir=$1 prog
  [[ -n $dir && -d $dir ]] || return 1
  for prog in initdb pg_ctl postgres; do
    [[ -x $dir/$prog ]] || return 1
    "$dir/$prog" --version >/dev/null 2>&1 || return 1
  done
}

find_bindir() {
  local dir
  if [[ -n ${PG_BINDIR:-} ]]; then
    bindir_works "$PG_BINDIR" || die "PG_BINDIR=$PG_BINDIR does not hold working initdb, pg_ctl and postgres"
    printf '%s\n' "$PG_BINDIR"
    return 0
  fi
  # pg_config may come from libpq-dev and name a version whose server is not installed,
  # so every candidate is checked, not trusted.
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    if bindir_works "$dir"; then printf '%s\n' "$dir"; return 0; fi
  fi
  # Debian/Ubuntu layout, newest major version first. (Deliberately not initdb/pg_ctl from
  # PATH: those can be wrappers or symlinks from elsewhere; the real bindir is unambiguous.)
  local candidates=()
  shopt -s nullglob
  candidates=(/usr/lib/postgresql/*/bin)
  shopt -u nullglob
  if ((${#candidates[@]} > 0)); then
    while IFS= read -r dir; do
      if bindir_works "$dir"; then printf '%s\n' "$dir"; return 0; fi
    done < <(printf '%s\n' "${candidates[@]}" | sort -t/ -k5,5 -V -r)
  fi
  return 1
}

install_postgresql() {
  [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed and we are not root to install it (set PG_BINDIR, or install the postgresql package)"
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is not available (set PG_BINDIR)"
  log "PostgreSQL not found: installing Debian's postgresql package"
  # We only need the binaries: ask the packaging not to create (and start) a "main" cluster.
  if [[ ! -e /etc/postgresql-common/createcluster.d/50-pg-cluster-sh.conf ]]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/50-pg-cluster-sh.conf
  fi
  export DEBIAN_FRONTEND=noninteractive
  {
    apt-get update -q
    apt-get install -y -q --no-install-recommends postgresql
  } </dev/null >&2 || die "apt-get install postgresql failed"
}

# --- running as the postgres user -----------------------------------------------------------

RUN_AS=()   # command prefix that runs the server programs as a non-root user

ensure_server_user() {
  if [[ $(id -u) -ne 0 ]]; then
    RUN_AS=()
    return 0
  fi
  if ! id -u postgres >/dev/null 2>&1; then
    log "creating the postgres system user"
    if command -v useradd >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
        --shell /bin/sh --comment 'PostgreSQL administrator' postgres >&2
    else
      adduser --system --group --no-create-home --home /var/lib/postgresql postgres >&2
    fi
  fi
  if command -v runuser >/dev/null 2>&1; then
    RUN_AS=(runuser -u postgres --)
  elif command -v setpriv >/dev/null 2>&1; then
    RUN_AS=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  else
    die "need runuser or setpriv to run PostgreSQL as the postgres user"
  fi
}

# Runs a server program as the server user, from a directory it can read, in the C locale
# (the machine's LANG may name a locale that is not generated).
as_server() {
  (cd / && LC_ALL=C LANG=C "${RUN_AS[@]}" "$@")
}

# --- ports ----------------------------------------------------------------------------------

# Asks the kernel for a free loopback port (bind to port 0). Another process may still take
# it before the server binds it; start() retries with a new port when that happens.
free_port() {
  local port=''
  if command -v python3 >/dev/null 2>&1; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || true)
  fi
  if [[ ! $port =~ ^[0-9]+$ ]] && command -v node >/dev/null 2>&1; then
    port=$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });' 2>/dev/null || true)
  fi
  if [[ ! $port =~ ^[0-9]+$ ]]; then
    # Last resort: a random high port that nothing answers on.
    local _
    for _ in $(seq 1 50); do
      port=$((20000 + RANDOM % 40000))
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    done
  fi
  [[ $port =~ ^[0-9]+$ ]] || die "could not find a free port"
  printf '%s\n' "$port"
}

url_for_port() { printf 'postgres://postgres@127.0.0.1:%s/postgres\n' "$1"; }

# --- commands -------------------------------------------------------------------------------

cmd_start() {
  local dir=$1 bindir
  if ! bindir=$(find_bindir); then
    install_postgresql
    bindir=$(find_bindir) || die "PostgreSQL binaries still not found after installing"
  fi
  log "using $("$bindir/postgres" --version) from $bindir"
  ensure_server_user

  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  [[ ! -e $dir/data ]] || die "$dir already holds a cluster (stop it first)"
  # `stop` deletes DIR, so only take an empty (or new) directory.
  [[ -z $(ls -A "$dir") ]] || die "$dir is not empty; give a new or empty directory (e.g. \$(mktemp -d))"
  touch "$dir/$MARKER"
  mkdir -p "$dir/data" "$dir/socket"
  chmod 700 "$dir" "$dir/data"
  if [[ $(id -u) -eq 0 ]]; then
    chown -R postgres:postgres "$dir"
    as_server test -w "$dir/data" ||
      die "the postgres user cannot write to $dir (is a parent directory private to root?)"
  fi

  log "initdb in $dir/data"
  as_server "$bindir/initdb" --pgdata="$dir/data" --username=postgres --auth=trust \
    --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }

  # Unix socket paths are limited to ~107 bytes; with a very long DIR, go TCP-only.
  local socket_dir="$dir/socket"
  if ((${#socket_dir} > 90)); then
    log "warning: $dir is too long for a unix socket; listening on TCP only"
    socket_dir=''
  fi
  cat >>"$dir/data/postgresql.conf" <<EOF

# --- throwaway test cluster (.ci/pg-cluster.sh): speed over durability ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$socket_dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
wal_writer_delay = 10000ms
checkpoint_timeout = 1h
max_wal_size = 4GB
log_min_messages = warning
log_checkpoints = off
EOF
  [[ $(id -u) -ne 0 ]] || chown postgres:postgres "$dir/data/postgresql.conf"

  local attempt port started=''
  for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
    port=$(free_port)
    log "starting on 127.0.0.1:$port (attempt $attempt)"
    if as_server "$bindir/pg_ctl" --pgdata="$dir/data" --log="$dir/postgres.log" \
      --options="-p $port" --wait --timeout="$READY_TIMEOUT" start >&2; then
      started=yes
      break
    fi
    log "start failed; last server log lines:"
    tail -n 5 "$dir/postgres.log" >&2 2>/dev/null || true
    # Make sure nothing is left half-running before retrying on another port.
    as_server "$bindir/pg_ctl" --pgdata="$dir/data" --mode=immediate --wait stop >/dev/null 2>&1 || true
  done
  [[ -n $started ]] || die "PostgreSQL did not start after $START_ATTEMPTS attempts (log: $dir/postgres.log)"

  local isready="$bindir/pg_isready" deadline=$((SECONDS + READY_TIMEOUT))
  [[ -x $isready ]] || isready=$(command -v pg_isready || true)
  if [[ -n $isready ]]; then
    until "$isready" --quiet --host=127.0.0.1 --port="$port" --username=postgres --dbname=postgres; do
      ((SECONDS < deadline)) || die "PostgreSQL is not accepting connections on port $port (log: $dir/postgres.log)"
      sleep 0.2
    done
  fi

  printf '%s\n' "$bindir" >"$dir/bindir"
  printf '%s\n' "$port" >"$dir/port"
  log "ready: 127.0.0.1:$port, data in $dir/data"
  url_for_port "$port"
}

# True when PID is a live (not zombie) postgres process.
postmaster_alive() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  # /proc/PID/stat is "PID (COMM) STATE ...": check the command name and that it is not a zombie.
  [[ $stat == *'(postgres)'* || $stat == *'(postmaster)'* ]] || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != [ZX] ]]
}

cmd_stop() {
  local dir=$1
  if [[ ! -e $dir ]]; then
    log "$dir does not exist: nothing to stop"
    return 0
  fi
  dir=$(cd "$dir" && pwd -P)
  [[ -e $dir/$MARKER ]] || die "$dir was not created by $0; refusing to stop or delete it"
  [[ $dir != / ]] || die "refusing to delete /"

  local pid
  pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
  if postmaster_alive "$pid"; then
    local bindir
    bindir=$(cat "$dir/bindir" 2>/dev/null || true)
    bindir_works "$bindir" || bindir=$(find_bindir) || bindir=''
    ensure_server_user
    if [[ -n $bindir ]]; then
      log "stopping the cluster in $dir"
      as_server "$bindir/pg_ctl" --pgdata="$dir/data" --mode=fast --wait --timeout=30 stop >&2 ||
        as_server "$bindir/pg_ctl" --pgdata="$dir/data" --mode=immediate --wait --timeout=30 stop >&2 ||
        true
    fi
    # Whatever happened above, make sure the postmaster is gone.
    if postmaster_alive "$pid"; then
      log "postmaster $pid still running: killing it"
      kill -QUIT "$pid" 2>/dev/null || true
      sleep 1
      kill -KILL "$pid" 2>/dev/null || true
    fi
  elif [[ -n $pid ]]; then
    log "the cluster in $dir is not running (stale postmaster.pid)"
  fi
  rm -rf -- "$dir"
  log "removed $dir"
}

cmd_url() {
  local dir=$1 port
  port=$(cat "$dir/port" 2>/dev/null) || die "no cluster in $dir"
  url_for_port "$port"
}

main() {
  (($# == 2)) || usage
  local command=$1 dir=$2
  [[ -n $dir ]] || usage
  case $command in
    start) cmd_start "$dir" ;;
    stop) cmd_stop "$dir" ;;
    url) cmd_url "$dir" ;;
    *) usage ;;
  esac
}

main "$@"

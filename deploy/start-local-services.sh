#!/usr/bin/env bash
# Make the local PostgreSQL and RabbitMQ answer (used by `make run` and `.ci/run`).
#
# For each server that DATABASE_URL / AMQP_URL put on this machine (127.0.0.1, the defaults):
#   it answers                -> nothing is done
#   installed but stopped     -> started (systemctl where systemd runs; else pg_ctlcluster, rabbitmq-server -detached)
#   not installed             -> installed from the operating system's packages and started: apt on Debian and
#                                Ubuntu (as root, or through sudo), Homebrew on macOS; never a downloaded binary.
#                                Elsewhere the one command to run is printed.
#   a DATABASE_URL with several hosts (a primary and its standbys) -> none is started: each local one that does not
#                                answer is named
# A server installed by this script gets the project's development defaults, and only then: see pg_trust_localhost.
# Exits 0 even when a server is still missing: shared/tools/preflight.py then says which one is not reachable.
set -uo pipefail
cd "$(dirname "$0")/.." || exit

MARK="# crm: added by deploy/start-local-services.sh"
# What this script installed (written before the install, so that one cut short is configured on the next run).
INSTALLED=var/local-services/installed-here
ours() { grep -qxF "$1" "$INSTALLED" 2>/dev/null; }

host_ports() {  # URL DEFAULT_PORT -> "host port", one line per host (postgresql://u@h1:p1,h2:p2/db?...)
  local rest=${1#*://} spec host port specs
  rest=${rest%%/*}; rest=${rest%%\?*}; rest=${rest##*@}
  IFS=, read -ra specs <<< "$rest"
  for spec in "${specs[@]:-}"; do
    case $spec in
      \[*) host=${spec%%]*}]; port=${spec#"$host"}; port=${port#:} ;;  # [::1]:5432
      *:*) host=${spec%:*}; port=${spec##*:} ;;
      *) host=$spec; port= ;;
    esac
    echo "${host:-127.0.0.1} ${port:-$2}"
  done
}
host_port() {  # URL DEFAULT_PORT -> "host port" of its (first) host
  local all; all=$(host_ports "$@"); echo "${all%%$'\n'*}"
}
is_local() { case $1 in 127.0.0.1|localhost|::1|'[::1]') return 0;; esac; return 1; }
answers() { timeout 2 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_for() {  # PORT SECONDS
  for _ in $(seq "$2"); do answers "$1" && return 0; sleep 1; done
  return 1
}
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}
has_systemd() { [ -d /run/systemd/system ]; }
can_apt() { command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null; }; }

install_apt() {  # PACKAGE...
  local started=$SECONDS
  echo "installing $* from the operating system's packages (apt-get install $*)"
  mkdir -p "$(dirname "$INSTALLED")" && printf '%s\n' "$@" >> "$INSTALLED"
  [ -n "${APT_UPDATED:-}" ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    || echo "apt-get update failed (see above); trying the install with the package lists there are"
  APT_UPDATED=1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    && echo "start-local-services: installed $* in $((SECONDS - started)) s"
}

install_brew() {  # FORMULA...
  echo "installing $* with Homebrew (brew install $*)"
  mkdir -p "$(dirname "$INSTALLED")" && printf '%s\n' "$@" >> "$INSTALLED"
  brew install "$@"
}

# Elsewhere: the one command to run (not tried here: the project's machines are Debian).
not_here() {  # NAME PACKAGE-FOR-APT,DNF-AND-ZYPPER,PACMAN
  local apt dnf pacman cmd; IFS=, read -r apt dnf pacman <<< "$2"
  if command -v apt-get >/dev/null; then cmd="su -c 'bash deploy/start-local-services.sh'  (as root it installs $apt)"
  elif command -v dnf >/dev/null; then cmd="sudo dnf install -y $dnf"
  elif command -v zypper >/dev/null; then cmd="sudo zypper install -y $dnf"
  elif command -v pacman >/dev/null; then cmd="sudo pacman -S --noconfirm $pacman"
  elif [ "$(uname)" = Darwin ]; then cmd="install Homebrew, then make run again"
  else cmd="install $1 with this system's packages"; fi
  if [ "${cmd#su }" != "$cmd" ]; then echo "$1 is not installed, and installing it needs root (there is no sudo). Run: $cmd" >&2
  else echo "$1 is not installed, and this script installs it with apt or Homebrew only. Run: $cmd" >&2; fi
  if [ "$1" = PostgreSQL ] && [ "${cmd#su }" = "$cmd" ]; then
    echo "then start it, with the postgres role let in from 127.0.0.1 without a password (or set DATABASE_URL)" >&2
  fi
}

# --- PostgreSQL (Debian's postgresql-common: pg_lsclusters, pg_ctlcluster) ---
pg_cluster() {  # PORT -> "version name" of the cluster configured on that port
  command -v pg_lsclusters >/dev/null && pg_lsclusters --no-header 2>/dev/null | awk -v p="$1" '$3 == p {print $1, $2; exit}'
}

# A fresh Debian cluster answers TCP with scram-sha-256 and the postgres role has no password, while the
# project's default DATABASE_URL (postgresql://postgres@127.0.0.1:5432/crm) has none: so for a server that
# this script installed (and never for one that was here before) the postgres role is trusted from 127.0.0.1,
# as on the project's CI machines. Any local user can then connect as postgres: a development machine only.
pg_trust_localhost() {  # VERSION NAME PORT
  local hba=/etc/postgresql/$1/$2/pg_hba.conf
  ours postgresql && ! ours "postgresql trusts 127.0.0.1" || return 0
  if ! as_root grep -qF "$MARK" "$hba"; then
    echo "PostgreSQL $1/$2 (installed by this script): trusting the postgres role from 127.0.0.1 ($hba)"
    as_root sed -i "1i $MARK\nhost    all    postgres    127.0.0.1/32    trust" "$hba" || return
  fi
  echo "postgresql trusts 127.0.0.1" >> "$INSTALLED"
  if answers "$3"; then as_root pg_ctlcluster --skip-systemctl-redirect "$1" "$2" reload; fi
  return 0
}

pg_start() {  # VERSION NAME
  echo "starting the local PostgreSQL ($1/$2)"
  if has_systemd; then as_root systemctl start "postgresql@$1-$2"
  else as_root pg_ctlcluster --skip-systemctl-redirect "$1" "$2" start; fi
}

postgresql() {  # PORT
  local cluster formula
  if [ "$(uname)" = Darwin ]; then
    formula=$(brew list --formula 2>/dev/null | grep -m1 -xE 'postgresql(@[0-9]+)?') || formula=postgresql@16
    brew_service "$formula" "$1" && brew_pg_role "$formula" "$1"; return
  fi
  cluster=$(pg_cluster "$1")
  if [ -z "$cluster" ] && ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    can_apt || { not_here PostgreSQL postgresql,postgresql-server,postgresql; return; }
    install_apt postgresql || return
    cluster=$(pg_cluster "$1")
  fi
  [ -n "$cluster" ] || { echo "no PostgreSQL cluster on port $1 (pg_lsclusters): pg_createcluster --start <version> main" >&2; return; }
  # shellcheck disable=SC2086  # $cluster is "version name"
  pg_trust_localhost $cluster "$1"
  # shellcheck disable=SC2086
  answers "$1" || pg_start $cluster
  wait_for "$1" 30 || echo "PostgreSQL did not answer on 127.0.0.1:$1 within 30 s" >&2
  # A reload is only a signal: wait until the new rule lets the project's role in (psql comes with the server).
  ours postgresql || return 0
  for _ in $(seq 10); do
    psql -w -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1 && return; sleep 1
  done
}

# --- RabbitMQ (its guest user is allowed from localhost by default: nothing to configure) ---
rabbitmq() {  # PORT
  if [ "$(uname)" = Darwin ]; then brew_service rabbitmq "$1"; return; fi
  if ! command -v rabbitmq-server >/dev/null && [ ! -x /usr/sbin/rabbitmq-server ]; then
    can_apt || { not_here RabbitMQ rabbitmq-server,rabbitmq-server,rabbitmq; return; }
    install_apt rabbitmq-server || return
  fi
  if ! answers "$1"; then
    echo "starting the local RabbitMQ"
    if has_systemd; then as_root systemctl start rabbitmq-server
    else as_root env PATH="$PATH:/usr/sbin" rabbitmq-server -detached; fi
  fi
  wait_for "$1" 120 || echo "RabbitMQ did not answer on 127.0.0.1:$1 within 120 s" >&2
}

# --- macOS: Homebrew's services (not tried on this project's machines, which are Debian) ---
brew_service() {  # FORMULA PORT
  command -v brew >/dev/null || { not_here "$1" ",,"; return 1; }
  brew list --formula "$1" >/dev/null 2>&1 || install_brew "$1" || return 1
  answers "$2" || brew services start "$1"
  wait_for "$2" 120 || { echo "$1 did not answer on 127.0.0.1:$2" >&2; return 1; }
}

# Homebrew's initdb makes the macOS user the superuser (trust from localhost); the project connects as postgres.
brew_pg_role() {  # FORMULA PORT
  ours "$1" || return 0
  "$(brew --prefix "$1")/bin/createuser" -h 127.0.0.1 -p "$2" -s postgres 2>/dev/null || true
}

db_hosts=$(host_ports "${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/crm}" 5432)
read -r db_host db_port <<< "$db_hosts"
if [ "$db_hosts" != "$db_host $db_port" ]; then
  # Several hosts (a primary and its standbys, docs/postgres-failover.md): none is started or installed here. A
  # stopped one may be a former primary, fenced after a promotion: started again, it would take writes.
  db_host=''
  echo "$db_hosts" | while read -r host port; do
    is_local "$host" && ! answers "$port" && echo "DATABASE_URL names several hosts: $host:$port does not answer (not started here)" >&2
  done
fi
read -r mq_host mq_port <<< "$(host_port "${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}" 5672)"
if [ -n "$db_host" ] && is_local "$db_host" && { ! answers "$db_port" || { ours postgresql && ! ours "postgresql trusts 127.0.0.1"; }; }; then
  postgresql "$db_port"
fi
if is_local "$mq_host" && ! answers "$mq_port"; then rabbitmq "$mq_port"; fi
[ "$SECONDS" -lt 2 ] || echo "start-local-services: done in $SECONDS s"
exit 0

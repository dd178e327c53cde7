#!/usr/bin/env bash
# make fresh-machine-check: do `make run` and `make test` work on a fresh Debian that has only python3 and make?
#
#   this machine (root)                          namespaces of the check (network, PID, mount, UTS)
#   var/fresh-machine/base   debootstrap minbase, kept as a cache, never entered
#   var/fresh-machine/root   a copy of it  ───►  chroot: /root/crm (the working tree's tracked files),
#                                                deploy/fresh-machine-inside.sh runs the newcomer's steps
#   veth crmfresh-h 10.213.77.1/30 ◄──────────►  crmfresh-n 10.213.77.2, its own 127.0.0.1: its own
#   nft table crm_fresh_machine: masquerade out  PostgreSQL on 5432, RabbitMQ on 5672, gateway on 8080
#   (Debian's mirror, PyPI); nothing from the namespace reaches this machine's own ports
#
# Writes var/fresh-machine-check.txt (printed at the end) and the logs in var/fresh-machine/logs/.
# Leaves nothing running: every process of the check is in its PID namespace, which dies with its first
# process (killed with this script, also by SIGKILL: --pdeathsig); its mounts are in its own mount namespace;
# the trap removes the network namespace, the veth pair, the nft table and the root (unless --keep).
# Options: --keep (keep var/fresh-machine/root), --untracked (also copy untracked, not ignored files),
#          --rebuild-base (debootstrap again), --patch=FILE (a diff applied to the copy only: to try a change
#          to the checkout without making it). FRESH_MIRROR, FRESH_RELEASE override the Debian mirror and release.
set -euo pipefail
{  # read whole before it runs: a change to this file (a pull, an edit) during a run cannot derail it
cd "$(dirname "$0")/.."
REPO=$PWD DIR=$PWD/var/fresh-machine SUMMARY=$PWD/var/fresh-machine-check.txt
ROOT=$DIR/root NS=crm-fresh VETH=crmfresh TABLE=crm_fresh_machine NET=10.213.77
# shellcheck source=/dev/null
RELEASE=${FRESH_RELEASE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
BASE=$DIR/base-$RELEASE
KEEP=0 UNTRACKED=0 REBUILD=0 PATCH=
for arg in "$@"; do
  case $arg in --keep) KEEP=1;; --untracked) UNTRACKED=1;; --rebuild-base) REBUILD=1;; --patch=*) PATCH=$(realpath "${arg#*=}");;
    --enter) ;; *) echo "unknown option $arg" >&2; exit 2;; esac
done
log() { echo "fresh-machine-check: $*"; }
# This machine's CA settings, for the chroot's otherwise clean environment: this network's TLS goes through its own CA.
ca_env() { for var in SSL_CERT_FILE REQUESTS_CA_BUNDLE PIP_CERT CURL_CA_BUNDLE; do [ -z "${!var:-}" ] || echo "$var=${!var}"; done; }
human() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# --- inside the new namespaces, before the chroot (the script runs itself with --enter) ---
if [ "${1:-}" = --enter ]; then
  mount -t proc proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys"
  mount --rbind /dev "$ROOT/dev"
  mount -t tmpfs -o mode=1777,size=4g shm "$ROOT/dev/shm"  # its own, not this machine's /dev/shm
  hostname crm-fresh
  # shellcheck disable=SC2046  # one VAR=value a line, without spaces
  exec chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb $(ca_env) bash /opt/fresh-machine-check/inside.sh
fi

[ "$(id -u)" = 0 ] || { echo "run as root: sudo make fresh-machine-check" >&2; exit 2; }
command -v apt-get >/dev/null || { echo "needs a Debian or Ubuntu machine (apt, debootstrap)" >&2; exit 2; }
mkdir -p "$DIR/logs"
exec 9> "$DIR/.lock"
flock -n 9 || { echo "another fresh-machine-check is running" >&2; exit 2; }

cleanup() {
  set +e
  [ -n "${INNER:-}" ] && kill -KILL "$INNER" 2>/dev/null && wait "$INNER" 2>/dev/null
  if ip netns list | grep -qw "$NS"; then
    for _ in $(seq 20); do  # every process of the check runs in its network namespace: by PID
      pids=$(ip netns pids "$NS"); [ -z "$pids" ] && break
      # shellcheck disable=SC2086  # one PID a word
      kill -KILL $pids 2>/dev/null; sleep 0.5
    done
    ip netns del "$NS"
  fi
  ip link del "$VETH-h" 2>/dev/null
  nft delete table ip "$TABLE" 2>/dev/null
  [ -f "$DIR/ip_forward.before" ] && sysctl -qw net.ipv4.ip_forward="$(cat "$DIR/ip_forward.before")" && rm "$DIR/ip_forward.before"
  if grep -q " ${ROOT}[/ ]" /proc/self/mountinfo; then
    echo "fresh-machine-check: mounts left under $ROOT: not deleting it" >&2
  elif [ "$KEEP" = 0 ] && [ -d "$ROOT" ]; then rm -rf --one-file-system "$ROOT"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup  # what a run killed by SIGKILL may have left
echo "fresh-machine-check: started $(date -u '+%F %H:%M UTC'), not finished (or stopped)" > "$SUMMARY"

need() {
  command -v "$1" >/dev/null && return
  log "installing $2 (apt-get)"
  [ -n "${APT_UPDATED:-}" ] || apt-get update -qq; APT_UPDATED=1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need debootstrap debootstrap; need nft nftables; need ip iproute2; need setpriv util-linux
started=$SECONDS

# --- the source: the working tree's tracked files (uncommitted changes included) ---
files() { git ls-files -z --cached; [ "$UNTRACKED" = 0 ] || git ls-files -z --others --exclude-standard; }
# Others may be editing the tree: a file changed while read (tar's status 1) is taken as it was read.
files | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
  | tar --null -T - --warning=no-file-changed -cf "$DIR/source.tar" || [ $? = 1 ]
changed=$(git status --porcelain --untracked-files=no | awk '{print $NF}' | paste -sd ' ' -)
untracked=$(git ls-files --others --exclude-standard | wc -l)
source_line="HEAD $(git rev-parse --short HEAD)"
[ -z "$changed" ] || source_line+=" + the working tree's changes to: $changed"
source_line+="; $untracked untracked files $([ "$UNTRACKED" = 1 ] && echo included || echo 'not included')"
[ -z "$PATCH" ] || source_line+="; then $(basename "$PATCH") applied to the copy"

# --- the base: debootstrap minbase once (its mounts in a mount namespace of its own) ---
if [ "$REBUILD" = 1 ] || [ ! -f "$BASE/.complete" ]; then
  rm -rf --one-file-system "$BASE"
  log "debootstrap --variant=minbase $RELEASE from $MIRROR (a few minutes; kept in $BASE)"
  t=$SECONDS
  unshare --mount --propagation private debootstrap --variant=minbase "$RELEASE" "$BASE" "$MIRROR" \
    > "$DIR/logs/debootstrap.log" 2>&1 || { tail -20 "$DIR/logs/debootstrap.log"; exit 1; }
  echo "debootstrap --variant=minbase $RELEASE: $(human $((SECONDS - t))) on $(date -u +%F)" > "$BASE/.complete"
fi
base_line="$(cat "$BASE/.complete"), $(dpkg-query --admindir="$BASE/var/lib/dpkg" -W -f '.\n' | wc -l) packages"

# --- the root: a copy of the base, made a Debian install as a newcomer has it ---
rm -rf --one-file-system "$ROOT"
cp -a "$BASE" "$ROOT"
rm -f "$ROOT/.complete"
security=${MIRROR%/debian}/debian-security
cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $RELEASE main
deb $MIRROR $RELEASE-updates main
deb $security $RELEASE-security main
EOF
# The chroot's 127.0.0.53 would be its own: with systemd-resolved, its upstream servers instead.
resolv=/etc/resolv.conf; [ -f /run/systemd/resolve/resolv.conf ] && resolv=/run/systemd/resolve/resolv.conf
cp "$resolv" "$ROOT/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tcrm-fresh\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
echo crm-fresh > "$ROOT/etc/hostname"
# This machine's own CA certificates (its network's TLS goes through them); ca-certificates adds them when installed.
mkdir -p "$ROOT/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
mkdir -p "$ROOT/root/crm" "$ROOT/opt/fresh-machine-check"
tar -xf "$DIR/source.tar" -C "$ROOT/root/crm"
# Outside a repository git apply is a careful patch (the ceiling keeps it from finding this checkout's).
[ -z "$PATCH" ] || (cd "$ROOT/root/crm" && GIT_CEILING_DIRECTORIES="$ROOT/root" git apply --verbose "$PATCH")
cp deploy/fresh-machine-inside.sh "$ROOT/opt/fresh-machine-check/inside.sh"

# --- the network: a namespace of its own, NAT to the outside, nothing to this machine ---
ip route | grep -q "^$NET\." && { echo "$NET.0/30 is already routed here; change NET in $0" >&2; exit 1; }
uplink=$(ip route show default | awk '{print $5; exit}')
sysctl -n net.ipv4.ip_forward > "$DIR/ip_forward.before"
ip netns add "$NS"
ip link add "$VETH-h" type veth peer name "$VETH-n"
ip link set "$VETH-n" netns "$NS"
ip addr add "$NET.1/30" dev "$VETH-h" && ip link set "$VETH-h" up
ip netns exec "$NS" ip addr add "$NET.2/30" dev "$VETH-n"
ip netns exec "$NS" ip link set "$VETH-n" up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip route add default via "$NET.1"
sysctl -qw net.ipv4.ip_forward=1
nft -f - <<EOF
table ip $TABLE {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    ip saddr $NET.0/30 oifname "$uplink" masquerade; }
  chain input { type filter hook input priority filter; policy accept;
    iifname "$VETH-h" ct state established,related accept; iifname "$VETH-h" drop; }
}
EOF

# --- the run (10 minutes here with fast mirrors, most of it make test's 8; longer on a slow link) ---
log "source: $source_line"
log "running the newcomer's steps in the chroot; progress in $DIR/logs/ after the run, live in $ROOT/opt/fresh-machine-check/out/"
# exec: the parent whose death kills the check must be this script itself, not a subshell of it.
(exec setpriv --pdeathsig KILL -- ip netns exec "$NS" unshare --pid --fork --kill-child --mount --propagation private \
  --uts -- bash "$REPO/deploy/fresh-machine-check.sh" --enter > "$DIR/logs/inside.log" 2>&1) &
INNER=$!
rc=0; wait "$INNER" || rc=$?
INNER=

rm -rf "$DIR/logs/out"
cp -a "$ROOT/opt/fresh-machine-check/out" "$DIR/logs/out" 2>/dev/null || true
{
  echo "fresh-machine-check: $([ $rc = 0 ] && echo PASS || echo "FAIL (rc=$rc)")  $(date -u '+%F %H:%M UTC'), $(human $((SECONDS - started))) in all"
  echo "source:  $source_line"
  echo "machine: Debian $RELEASE, $base_line; in its own network, PID, mount and UTS namespaces; this machine's CA certificates"
  cat "$DIR/logs/out/summary.txt" 2>/dev/null || tail -20 "$DIR/logs/inside.log"
  echo "logs:    var/fresh-machine/logs/ (out/make-run.out, out/make-test.log, ...)"
} > "$SUMMARY"
cat "$SUMMARY"
exit $rc
}

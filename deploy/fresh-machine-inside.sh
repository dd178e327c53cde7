#!/usr/bin/env bash
# The newcomer's side of `make fresh-machine-check` (deploy/fresh-machine-check.sh runs it as root in a
# chroot of a minimal Debian, in namespaces of its own): the packages a newcomer has, `make run` until a
# press through the gateway is answered 200, Ctrl-C, `make test`. Each step's time and what it installed
# go to $OUT/summary.txt; its output to $OUT/<step>.log.
set -uo pipefail
OUT=/opt/fresh-machine-check/out
SRC=/root/crm
NEWCOMER="python3 python3-venv make ca-certificates"
RUN_DEADLINE=${RUN_DEADLINE:-2400}   # s for make run to answer a press (it creates the venv and installs the servers)
TEST_DEADLINE=${TEST_DEADLINE:-5400} # s for make test
mkdir -p "$OUT"
failed=0

packages() { dpkg-query -W -f '${Package}\n' 2>/dev/null | sort; }
human() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
row() { printf '%-34s %-5s %8s  %s\n' "$1" "$2" "$3" "$4" | tee -a "$OUT/summary.txt"; }
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
# What apt installed since the line count $1 of its history: the command lines that did it.
apt_commands() { tail -n +"$(($1 + 1))" /var/log/apt/history.log 2>/dev/null | sed -n 's/^Commandline: //p' | paste -sd ';' -; }
history_lines() { if [ -f /var/log/apt/history.log ]; then wc -l < /var/log/apt/history.log; else echo 0; fi; }

step() {  # NAME COMMAND... (timed; the packages it added counted)
  local name=$1 before history started rc added commands; shift
  before=$(packages); history=$(history_lines); started=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1; rc=$?
  added=$(comm -13 <(echo "$before") <(packages) | wc -l)
  commands=$(apt_commands "$history")
  row "$name" "$([ $rc = 0 ] && echo ok || echo "rc=$rc")" "$(human $((SECONDS - started)))" \
      "+$added Debian packages${commands:+ ($commands)}"
  [ $rc = 0 ] || failed=1
  return $rc
}

# shellcheck disable=SC2317  # the functions below are called through step
newcomer() {
  # shellcheck disable=SC2086  # a list of package names
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $NEWCOMER
}

# One press through the gateway, as a person would: create a lead (201), then move it (200).
press() {  # TOKEN
  python3 - "$1" <<'EOF'
import json, sys, time, urllib.error, urllib.request
token, url = sys.argv[1], "http://127.0.0.1:8080"
def post(path, body, key):
    request = urllib.request.Request(url + path, json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read()), time.monotonic() - started
    except urllib.error.HTTPError as refusal:
        return refusal.code, refusal.read()[:200], time.monotonic() - started
created, body, t1 = post("/api/leads", {"name": "Fresh Machine", "phone": "(415) 555-0100"}, "fresh-create")
if created != 201:
    sys.exit(f"POST /api/leads answered {created}: {body}")
moved, body, t2 = post("/api/leads/update-status", {"leadId": body["lead"]["id"], "status": "contacted"}, "fresh-move")
print(f"POST /api/leads {created} ({t1:.2f} s), POST /api/leads/update-status {moved} ({t2:.2f} s)")
sys.exit(0 if moved == 200 else 1)
EOF
}

# make run in its own session (as in a terminal), polled until a press is answered 200, then Ctrl-C.
make_run_until_a_press() {
  local token answer
  cd "$SRC" || return
  setsid make run > "$OUT/make-run.out" 2>&1 < /dev/null &
  RUN_PID=$!  # setsid makes it the leader of its own group and session
  for _ in $(seq $((RUN_DEADLINE / 3))); do
    if ! kill -0 "$RUN_PID" 2>/dev/null; then wait "$RUN_PID"; echo "make run exited (rc=$?)"; return 1; fi
    token=$(awk '/^Token for user/ {getline; print; exit}' "$OUT/make-run.out")
    if [ -n "$token" ] && answer=$(press "$token" 2>&1); then echo "$answer" > "$OUT/press.txt"; return 0; fi
    sleep 3
  done
  echo "no press answered 200 within $RUN_DEADLINE s (last: ${answer:-no token yet})"; return 1
}

stop_make_run() {  # Ctrl-C: SIGINT to the whole foreground group, as a terminal sends it
  kill -INT -- "-$RUN_PID" 2>/dev/null
  for _ in $(seq 60); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 1; done
  if kill -0 "$RUN_PID" 2>/dev/null; then kill -KILL -- "-$RUN_PID"; echo "still running after 60 s: killed"; return 1; fi
  ! timeout 2 bash -c '</dev/tcp/127.0.0.1/8080' 2>/dev/null || { echo "the gateway still answers"; return 1; }
}

run_tests() { cd "$SRC" && timeout "$TEST_DEADLINE" make test; }
stopped_at() {  # the lint's first finding, or the last line
  { grep -A2 'ruff check' "$OUT/make-test.log" | tail -n +2 || tail -1 "$OUT/make-test.log"; } | head -2 | paste -sd ' ' -
}

stop_servers() {  # make run leaves them running, as on a developer's machine
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main stop -m fast
  rabbitmqctl -q stop
}

# The other half of the script: servers installed but stopped (a reboot without systemd) are started again.
restart_stopped() {
  stop_servers || return
  bash "$SRC/deploy/start-local-services.sh" || return
  for port in 5432 5672; do timeout 2 bash -c "</dev/tcp/127.0.0.1/$port" || { echo "nothing on $port"; return 1; }; done
}

say "step                               result     time  installed"
step newcomer newcomer
say "  newcomer's packages: $NEWCOMER ($(python3 --version 2>&1), $(make --version | head -1))"
if step make-run make_run_until_a_press; then
  say "  press: $(cat "$OUT/press.txt")"
  say "  $(grep -h '^start-local-services:' "$OUT/make-run.out" | sed 's/^start-local-services: //' | paste -sd ';' -)"
  say "  venv: $(/root/crm/.venv/bin/python -m pip list 2>/dev/null | tail -n +3 | wc -l) packages from PyPI, $(du -sh /root/crm/.venv | cut -f1)"
  step make-run-stop stop_make_run
  step servers-stopped-then-started restart_stopped
  step make-test run_tests
  counts=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$OUT/make-test.log" | tail -1 | tr -d '=' | xargs)
  say "  pytest: ${counts:-did not run; make test stopped at: $(stopped_at)}"
  grep -E '^(FAILED|ERROR) ' "$OUT/make-test.log" | head -20 | sed 's/^/  /' | tee -a "$OUT/summary.txt"
else
  kill -KILL -- "-$RUN_PID" 2>/dev/null
  tail -15 "$OUT/make-run.out" | sed 's/^/  | /' | tee -a "$OUT/summary.txt"
fi
say "  disk: $(du -sxh / 2>/dev/null | cut -f1) in the chroot at the end, $(packages | wc -l) Debian packages"
stop_servers > "$OUT/stop-servers.log" 2>&1
exit $failed

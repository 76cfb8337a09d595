#!/bin/bash
# Runs inside the booted test system as a oneshot unit (see systemd-e2e.sh): installs faced as
# the README says, then checks the service as an administrator would. Prints one line per check;
# the last line is PASS or FAIL: <why>. The machine powers off when this ends.
set -uo pipefail

fail() {
    echo "--- journal of faced.service ---"
    journalctl -u faced --no-pager -o short-monotonic | tail -n 80
    echo "FAIL: $*"
    exit 1
}
state() { systemctl show -p ActiveState --value faced; }
status_text() { systemctl show -p StatusText --value faced; }
# Photos read so far, from the status line systemd shows ("0 queued, 61 read, ...").
read_count() { status_text | sed -n 's/^[0-9]* queued, \([0-9]*\) read.*/\1/p'; }
links() { find /srv/photos/people -mindepth 2 -maxdepth 2 -type l | wc -l; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
    local limit=$1 what=$2 start=$SECONDS
    shift 2
    until "$@"; do
        ((SECONDS - start < limit)) || fail "$what: not within ${limit} s (status: $(status_text))"
        sleep 1
    done
    echo "ok: $what ($((SECONDS - start)) s)"
}

cd /src || fail "no /src"
echo "== make install-service"
make install-service PYTHON=python3 > /tmp/install.log 2>&1 || { tail -n 40 /tmp/install.log; fail "make install-service"; }
[[ $(state) == active ]] || fail "not active after install (state $(state))"
echo "ok: active after make install-service (READY=1 received)"

# Photos arrive the way nearly every user adds them: folders copied in with cp -r.
mkdir -p /tmp/incoming
n=0
for photo in /data/fixture_small/*/*.jpg; do
    folder=/tmp/incoming/album_$((n % 20))
    mkdir -p "$folder"
    cp "$photo" "$folder/$(basename "$(dirname "$photo")")_$n.jpg"
    n=$((n + 1))
done
cp -r /tmp/incoming/* /srv/photos/library/
echo "copied $n photos in 20 folders with cp -r"
all_read() { [[ $(read_count) == "$n" ]]; }
wait_for 240 "all $n photos read" all_read
all_linked() { [[ $(links) -ge $n ]]; }
wait_for 120 "all $n photos linked under /srv/photos/people" all_linked
[[ -n $(find /srv/photos/people -mindepth 1 -maxdepth 1 -type d ! -name unknown) ]] \
    || fail "no person folder"
echo "ok: person folders: $(find /srv/photos/people -mindepth 1 -maxdepth 1 -type d -printf '%f ')"
echo "ok: status line: $(status_text)"

echo "== the sandbox and the native libraries"
# The unit's own sandbox around a probe that loads what faced loads (faiss only clusters
# libraries over 20,000 faces, so the daemon above never touched it).
sed -e 's/^Type=notify/Type=oneshot/' -e '/^WatchdogSec=/d' -e '/^ExecReload=/d' -e '/^Restart/d' \
    -e '/^NotifyAccess=/d' \
    -e 's|^ExecStart=.*|ExecStart=/opt/faced/venv/bin/python /src/tests/system/probe.py|' \
    /etc/systemd/system/faced.service > /etc/systemd/system/faced-probe.service
systemctl daemon-reload
systemctl start faced-probe.service || fail "the libraries do not load in the sandbox"
probe=$(journalctl -u faced-probe -o cat)
grep -q "^probe ok" <<<"$probe" || { echo "$probe"; fail "the probe did not finish"; }
echo "ok: $(grep '^probe ok' <<<"$probe")"

echo "== systemctl reload"
pid=$(systemctl show -p MainPID --value faced)
systemctl reload faced || fail "systemctl reload failed"
sleep 5
[[ $(state) == active ]] || fail "not active after reload (state $(state))"
[[ $(systemctl show -p MainPID --value faced) == "$pid" ]] || fail "reload restarted the process"
journalctl -u faced -o cat | grep -q "configuration reloaded" || fail "no reload line in the journal"
echo "ok: active after reload, same process"
photo=$(ls /data/fixture_small/*/*.jpg | head -n 1)
cp "$photo" /srv/photos/library/after_reload.jpg
n=$((n + 1))
wait_for 120 "a photo added after the reload is read" all_read

echo "== systemctl stop"
start=$EPOCHREALTIME
systemctl stop faced
took=$(python3 -c "print(round($EPOCHREALTIME - $start, 1))")
python3 -c "import sys; sys.exit(float('$took') >= 10)" || fail "stop took $took s"
[[ $(systemctl show -p Result --value faced) == success ]] \
    || fail "stop result $(systemctl show -p Result --value faced)"
echo "ok: stopped in $took s, result success"

echo "== journal"
journal=$(journalctl -u faced -o cat)
if grep -n -E "Traceback|Warning: |^ *File \"|physical cores" <<<"$journal"; then
    fail "the journal carries tracebacks or library noise"
fi
grep -q "^read .*after_reload.jpg" <<<"$journal" || fail "no arrival line for a photo"
echo "ok: no tracebacks or library noise in $(wc -l <<<"$journal") journal lines"
echo PASS

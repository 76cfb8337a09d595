#!/bin/bash
# End-to-end tier: boots a real systemd (Debian 12, systemd 252) as PID 1 of a PID namespace over a
# debootstrap'd root, installs faced there with `make install-service` exactly as the README
# says, and runs tests/system/checks.sh inside as a oneshot unit: start (READY), photos copied
# in as folders all read, reload stays active, stop within 10 s, no traceback in the journal.
#
# Needs root, debootstrap, unshare (util-linux) and the Debian mirror apt uses. The base root is
# cached in $FACED_E2E_CACHE (default /var/cache/faced-e2e) so a second run skips debootstrap.
# Usage: tests/system/systemd-e2e.sh [PHOTOS_DIR]   (default ../shared/data/faces)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
photos=${1:-${FACED_TEST_PHOTOS:-$repo/../shared/data/faces}}
cache=${FACED_E2E_CACHE:-/var/cache/faced-e2e}
limit=${FACED_E2E_TIMEOUT:-900}
[[ $(id -u) == 0 ]] || { echo "systemd-e2e: needs root" >&2; exit 2; }
[[ -d $photos/fixture_small ]] || { echo "systemd-e2e: no $photos/fixture_small" >&2; exit 2; }

work=$(mktemp -d /tmp/faced-e2e.XXXXXX)
root=$work/root
trap 'rm -rf --one-file-system "$work"' EXIT

base=$cache/bookworm-base.tar
if [[ ! -f $base ]]; then
    echo "systemd-e2e: debootstrap bookworm (cached in $base afterwards)"
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
    mkdir -p "$cache" "$work/base"
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,procps,python3,python3-venv,make \
        bookworm "$work/base" "${mirror:-http://deb.debian.org/debian}" > "$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log"; exit 1; }
    tar -C "$work/base" -cf "$base.part" . && mv "$base.part" "$base"
    rm -rf --one-file-system "$work/base"
fi
mkdir -p "$root"
tar -C "$root" -xf "$base"

# The source as committed plus any local edits (what `git clone` + the work tree would give).
mkdir -p "$root/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$root/src" -xf -

# pip inside the root uses this machine's pip configuration (its index and wheel folders,
# read-only) and CA bundle (a proxy that re-signs TLS would otherwise be refused).
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
for conf in /etc/pip.conf /etc/xdg/pip; do
    [[ -e $conf ]] && mkdir -p "$root$(dirname "$conf")" && cp -a "$conf" "$root$conf"
done
mounts=()
for dir in $(python3 - <<'PY'
import configparser, glob, os
seen = set()
for path in ["/etc/pip.conf", *glob.glob("/etc/xdg/pip/*.conf"), os.path.expanduser("~/.config/pip/pip.conf")]:
    cp = configparser.ConfigParser()
    try:
        cp.read(path)
    except configparser.Error:
        continue
    for section in cp.sections():
        for value in cp[section].values():
            for word in value.split():
                word = word.removeprefix("file://")
                if word.startswith("/") and os.path.isdir(word):
                    seen.add(word)
print("\n".join(sorted(seen)))
PY
); do mounts+=("$dir"); done

mkdir -p "$root/data/fixture_small" "$root/e2e"
cat > "$root/etc/systemd/system/faced-e2e.service" <<UNIT
[Unit]
Description=faced end-to-end checks
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c '/src/tests/system/checks.sh > /e2e/log 2>&1; systemctl poweroff --no-block'
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/faced-e2e.service "$root/etc/systemd/system/multi-user.target.wants/"
# A container has no consoles to log in on.
ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"

cat > "$work/boot.sh" <<BOOT
set -e
mount --make-rprivate /
mount --bind "$root" "$root"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
mount --bind -o ro "$photos/fixture_small" "$root/data/fixture_small"
for dir in ${mounts[*]}; do
    mkdir -p "$root\$dir" && mount --bind -o ro "\$dir" "$root\$dir"
done
exec env container=other chroot "$root" /lib/systemd/systemd --system
BOOT
echo "systemd-e2e: booting systemd (limit ${limit} s)"
start=$SECONDS
timeout --kill-after=10 "$limit" unshare --pid --fork --mount --uts --ipc bash "$work/boot.sh" \
    > "$work/console.log" 2>&1 || echo "systemd-e2e: systemd ended with status $?"
echo "systemd-e2e: the system ran $((SECONDS - start)) s"
if [[ ! -s $root/e2e/log ]]; then
    tail -n 30 "$work/console.log"
    echo "systemd-e2e: FAIL: the checks left no log"
    exit 1
fi
cat "$root/e2e/log"
[[ $(tail -n 1 "$root/e2e/log") == PASS ]]

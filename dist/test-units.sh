#!/bin/sh
# The systemd units, checked by systemd itself: `systemd-analyze verify`
# must accept each unit without a single warning (it exits 0 on unknown
# keys and bad values, so its output is what counts), the hardening the
# operator relies on must be there, and `systemd-analyze security
# --offline` gives each an exposure score, printed and bounded.
#
# ExecStart is pointed at this build's programs (verify checks that the
# command exists); Documentation= man pages are looked up in this build's
# docs/man when scdoc built them.  A unit with a misspelled key is checked
# too, to show that a warning fails the check.
#   test-units.sh BUILD_ROOT UNIT_BUILD_DIR
set -u

build=$1
units=$2
tmp=$(mktemp -d /tmp/sp-units-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
n=0
failed=0

ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "1..0 # SKIP systemd-analyze is not installed (package systemd)"
	exit 0
fi

# A user manager needs a runtime directory even for offline checks.
mkdir -p "$tmp/run" "$tmp/units" "$tmp/man"
chmod 700 "$tmp/run"
export XDG_RUNTIME_DIR="$tmp/run"

man_opt=--man=no
if ls "$build"/docs/man/*.[158] >/dev/null 2>&1; then
	for f in "$build"/docs/man/*.[158]; do
		s=${f##*.}
		mkdir -p "$tmp/man/man$s"
		ln -s "$f" "$tmp/man/man$s/"
	done
	export MANPATH="$tmp/man"
	man_opt=--man=yes
fi

bindir=$(sed -n 's#^ExecStart=\(.*\)/sealpost-server .*#\1#p' \
    "$units/sealpost-server.service")
for u in sealpost-server sealpost-gateway sealpost-bridge; do
	sed -e "s#^ExecStart=$bindir/sealpost-server #ExecStart=$build/server/sealpost-server #" \
	    -e "s#^ExecStart=$bindir/sealpost-gateway #ExecStart=$build/server/gateway/sealpost-gateway #" \
	    -e "s#^ExecStart=$bindir/sealpost-bridge #ExecStart=$build/bridge/sealpost-bridge #" \
	    "$units/$u.service" >"$tmp/units/$u.service"
done
pointed=0
for u in sealpost-server sealpost-gateway sealpost-bridge; do
	grep -q "^ExecStart=$build/[a-z/]*/$u " "$tmp/units/$u.service" &&
	    pointed=$((pointed + 1))
done
[ $pointed -eq 3 ]
ok $? "ExecStart of each unit points at this build"

# verify UNIT [--user]: 0 only if systemd-analyze says nothing at all.
verify() {
	out=$(systemd-analyze $2 $man_opt verify "$1" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && [ -z "$out" ] && return 0
	diag "$out"
	return 1
}

verify "$tmp/units/sealpost-server.service" ""
ok $? "systemd-analyze verify sealpost-server.service ($man_opt)"
verify "$tmp/units/sealpost-gateway.service" ""
ok $? "systemd-analyze verify sealpost-gateway.service ($man_opt)"
verify "$tmp/units/sealpost-bridge.service" --user
ok $? "systemd-analyze --user verify sealpost-bridge.service ($man_opt)"

# The check can fail: a misspelled key is a warning.
sed 's/^NoNewPrivileges=/NoNewPrivilege=/' \
    "$tmp/units/sealpost-server.service" >"$tmp/units/broken.service"
verify "$tmp/units/broken.service" "" >/dev/null
[ $? -ne 0 ]
ok $? "a misspelled key fails the verify check"

# has UNIT KEY=VALUE...: every line is in the unit, as written.
has() {
	f=$1
	shift
	for line in "$@"; do
		grep -qxF -- "$line" "$f" || { diag "$f lacks $line"; return 1; }
	done
	return 0
}

for u in server gateway; do
	has "$tmp/units/sealpost-$u.service" User=sealpost \
	    NoNewPrivileges=yes ProtectSystem=strict \
	    ReadWritePaths=/var/lib/sealpost PrivateTmp=yes \
	    PrivateDevices=yes ProtectHome=yes ProtectKernelTunables=yes \
	    ProtectKernelModules=yes ProtectKernelLogs=yes \
	    ProtectControlGroups=yes \
	    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" \
	    RestrictNamespaces=yes LockPersonality=yes \
	    MemoryDenyWriteExecute=yes SystemCallArchitectures=native \
	    SystemCallFilter=@system-service \
	    CapabilityBoundingSet=CAP_NET_BIND_SERVICE \
	    AmbientCapabilities=CAP_NET_BIND_SERVICE UMask=0077 \
	    Restart=on-failure
	ok $? "sealpost-$u.service has the hardening settings"
done
has "$tmp/units/sealpost-bridge.service" NoNewPrivileges=yes \
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" \
    MemoryDenyWriteExecute=yes SystemCallFilter=@system-service \
    UMask=0077 Restart=on-failure
ok $? "sealpost-bridge.service has the hardening a user unit allows"

# score UNIT MAX [--user]: the exposure level, at most MAX.
score() {
	out=$(systemd-analyze $3 security --offline=yes "$1" 2>&1)
	level=$(printf '%s\n' "$out" |
	    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	echo "# $(basename "$1"): exposure $level (0 = best, 10 = worst)"
	[ -n "$level" ] || { diag "$out"; return 1; }
	awk -v l="$level" -v m="$2" 'BEGIN { exit !(l <= m) }'
}

score "$tmp/units/sealpost-server.service" 2.5 ""
ok $? "sealpost-server.service: exposure at most 2.5"
score "$tmp/units/sealpost-gateway.service" 2.5 ""
ok $? "sealpost-gateway.service: exposure at most 2.5"
score "$tmp/units/sealpost-bridge.service" 3.5 --user
ok $? "sealpost-bridge.service (user unit): exposure at most 3.5"

echo "1..$n"
[ $failed -eq 0 ]

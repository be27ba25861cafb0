#!/bin/sh
# The local key in the desktop keyring: a real Secret Service (GNOME
# Keyring, started on a private D-Bus session bus) holds it after the first
# use, so the device opens its mail without the password; without the
# keyring the password is needed again (cache.key stays the fallback); a
# keyring that lost the entry falls back to the password too.  TAP.
#   test-keyring.sh BUILD_DIR
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-"$top/build"}
sp="$build/client-core/sealpost"

if ! command -v dbus-run-session >/dev/null 2>&1 ||
    ! command -v gnome-keyring-daemon >/dev/null 2>&1; then
	echo "1..0 # SKIP dbus-run-session or gnome-keyring-daemon missing"
	exit 0
fi

# Inside a private session bus, with a keyring unlocked there.
if [ "${SP_KEYRING_INNER:-}" != 1 ]; then
	export SP_KEYRING_INNER=1
	export HOME=$(mktemp -d /tmp/sp-keyring-home-XXXXXX)
	unset DBUS_SESSION_BUS_ADDRESS SEALPOST_NO_KEYRING
	dbus-run-session -- "$0" "$build"
	rc=$?
	rm -rf "$HOME"
	exit $rc
fi

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

dir=$(mktemp -d /tmp/sp-keyring-XXXXXX)
cleanup() {
	SEALPOST_NO_BUILD=1 SEALPOST_BUILD_DIR="$build" \
	    "$top/scripts/sealpost-stack" down "$dir/stack" >/dev/null 2>&1
	pkill -f "gnome-keyring-daemon.*$HOME" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

printf 'keyring-test' | gnome-keyring-daemon --unlock --components=secrets \
    --daemonize >/dev/null 2>&1
ok $? "a Secret Service (gnome-keyring) runs on the private session bus"

SEALPOST_NO_BUILD=1 SEALPOST_BUILD_DIR="$build" \
    "$top/scripts/sealpost-stack" up "$dir/stack" --accounts 1 --no-bridge \
    >/dev/null 2>&1
ok $? "the local stack is up"
. "$dir/stack/stack.env"
printf '%s\n' "$USER1_PASSWORD" >"$dir/pw"

out=$("$sp" sync --cache "$dir/c" --server "$SERVER" --ca "$CA_FILE" \
    --address "$USER1" --password-file "$dir/pw" </dev/null 2>&1)
ok $? "first use: the password opens the cache and logs in"

out=$("$sp" ls --cache "$dir/c" </dev/null 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "Welcome to sealpost"
ok $? "then no password is asked: the keyring holds the local key"
[ -f "$dir/c/cache.key" ]
ok $? "cache.key stays as the fallback"

out=$(SEALPOST_NO_KEYRING=1 "$sp" ls --cache "$dir/c" </dev/null 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "password"
ok $? "without the keyring the password is needed again, and said so"

out=$(SEALPOST_NO_KEYRING=1 "$sp" ls --cache "$dir/c" \
    --password-file "$dir/pw" </dev/null 2>&1)
ok $? "... and the password still opens it"

# The keyring's secret is the key, not the password.
python3 - "$USER1_PASSWORD" "$HOME" <<'PY'
import os, sys
pw = sys.argv[1].encode()
for root, _, files in os.walk(sys.argv[2]):
    for f in files:
        p = os.path.join(root, f)
        if not os.path.isfile(p):
            continue            # the keyring's control socket
        if pw in open(p, "rb").read():
            sys.exit(1)
PY
ok $? "the password is stored nowhere in the keyring's files"

# A keyring that lost the entry: the password is asked for again.
gdbus call --session --dest org.freedesktop.secrets \
    --object-path /org/freedesktop/secrets \
    --method org.freedesktop.Secret.Service.SearchItems \
    "{'cache': '$(cd "$dir/c" && pwd -P)'}" >"$dir/items" 2>/dev/null
grep -q "/org/freedesktop/secrets/collection" "$dir/items"
ok $? "the entry is named by the cache directory (attribute cache)"

rm -f "$dir/pw"
echo "1..$n"
[ $failed -eq 0 ]

#!/bin/sh
# sealpost-admin end to end: init (store, server secret, self-signed or
# copied TLS certificate; idempotent), user list/quota/disable/enable/
# delete against a running server and the real client, backup while
# serving, restore into a fresh data directory (and its refusals), usage
# errors.  TAP output.  Needs the build directory (argument 1).
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-"$top/build"}
admin="$build/server/sealpost-admin"
server="$build/server/sealpost-server"
client="$build/client-core/sealpost"
dir=$(mktemp -d /tmp/sp-admin-XXXXXX)
n=0
failed=0
pid=
A=alice@example.org
B=bob@example.org
t=$(printf '\t')   # user list separates its fields with tabs

ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

# Shows what a failed check saw.
diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

stop_server() {
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	pid=
	return $rc
}

cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
	python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server DATA_DIR: sets pid and port; 0 once /health answers.
start_server() {
	port=$(free_port)
	"$server" --data-dir "$1" --port "$port" --domains example.org \
	    --tls-cert "$1/tls/cert.pem" --tls-key "$1/tls/key.pem" \
	    >>"$dir/server.log" 2>&1 &
	pid=$!
	i=0
	until curl -sf --cacert "$1/tls/cert.pem" \
	    "https://127.0.0.1:$port/health" >/dev/null 2>&1; do
		i=$((i + 1))
		kill -0 "$pid" 2>/dev/null || return 1
		[ $i -lt 100 ] || return 1
		sleep 0.1
	done
	return 0
}

# create DATA_DIR ADDRESS
create() {
	printf 'pw-%s\n' "$2" >"$dir/pw"
	"$client" account create --server "127.0.0.1:$port" \
	    --ca "$1/tls/cert.pem" --address "$2" \
	    --invite "$("$admin" --data-dir "$1" invite)" \
	    --password-file "$dir/pw" --kdf-ops 2 --kdf-mem-mib 64 2>&1
}

# login DATA_DIR ADDRESS: the client's output; its exit status.
login() {
	printf 'pw-%s\n' "$2" >"$dir/pw"
	"$client" account login --server "127.0.0.1:$port" \
	    --ca "$1/tls/cert.pem" --address "$2" --password-file "$dir/pw" 2>&1
}

sha() {
	sha256sum "$1" | cut -d' ' -f1
}

# ---- 1. init ---------------------------------------------------------------
D="$dir/data"
out=$("$admin" --data-dir "$D" init 2>&1)
ok $? "init on a fresh directory"
[ -f "$D/store/data.mdb" ] && [ -f "$D/tls/cert.pem" ] &&
    [ -f "$D/tls/key.pem" ]
ok $? "init made the store and tls/cert.pem + key.pem"
[ "$(stat -c %a "$D")" = 700 ] && [ "$(stat -c %a "$D/server.key")" = 600 ] &&
    [ "$(stat -c %s "$D/server.key")" = 32 ] &&
    [ "$(stat -c %a "$D/tls/key.pem")" = 600 ]
ok $? "data dir 0700, server.key 32 bytes 0600, key.pem 0600"
echo "$out" | grep -q -- "--data-dir $D" &&
    echo "$out" | grep -q -- "--tls-cert $D/tls/cert.pem" &&
    echo "$out" | grep -q -- "--tls-key $D/tls/key.pem"
ok $? "init prints the server flags"
text=$(openssl x509 -in "$D/tls/cert.pem" -noout -text 2>&1)
echo "$text" | grep -q "DNS:localhost, IP Address:127.0.0.1"
ok $? "the certificate names DNS:localhost and IP:127.0.0.1"
echo "$text" | grep -q "CA:FALSE" && ! echo "$text" | grep -q "CA:TRUE"
ok $? "the certificate is not a CA"
echo "$text" | grep -q "prime256v1\|P-256"
ok $? "the key is EC P-256"
key1=$(sha "$D/server.key")
cert1=$(sha "$D/tls/cert.pem")
out=$("$admin" --data-dir "$D" init 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "nothing changed" &&
    [ "$(sha "$D/server.key")" = "$key1" ] &&
    [ "$(sha "$D/tls/cert.pem")" = "$cert1" ]
ok $? "a second init changes nothing and says so"
C="$dir/copied"
"$admin" --data-dir "$C" init --tls-cert "$D/tls/cert.pem" \
    --tls-key "$D/tls/key.pem" >/dev/null 2>&1 &&
    cmp -s "$C/tls/cert.pem" "$D/tls/cert.pem" &&
    cmp -s "$C/tls/key.pem" "$D/tls/key.pem" &&
    [ "$(stat -c %a "$C/tls/key.pem")" = 600 ]
ok $? "init --tls-cert/--tls-key copies them (key 0600)"
"$admin" --data-dir "$dir/other" init --hostname mail.example.org \
    >/dev/null 2>&1
out=$("$admin" --data-dir "$dir/mixed" init --tls-cert "$D/tls/cert.pem" \
    --tls-key "$dir/other/tls/key.pem" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "does not belong"
ok $? "init refuses a key that does not match the certificate"
openssl x509 -in "$dir/other/tls/cert.pem" -noout -text 2>/dev/null |
    grep -q "DNS:mail.example.org"
ok $? "init --hostname names that host"

# ---- 2. a server on it, two accounts --------------------------------------
start_server "$D"
ok $? "the server starts with init's flags"
out=$(create "$D" $A)
ok $? "account $A created" || diag "$out"
out=$(create "$D" $B)
ok $? "account $B created" || diag "$out"
out=$(login "$D" $A)
echo "$out" | grep -q "logged in as $A"
ok $? "$A logs in" || diag "$out"
out=$(login "$D" $B)
ok $? "$B logs in" || diag "$out"

# ---- 3. user list, quota, disable, enable ---------------------------------
list=$("$admin" --data-dir "$D" user list)
[ $? -eq 0 ] && [ "$(echo "$list" | wc -l)" -eq 2 ] &&
    echo "$list" | grep -q "^$A${t}[0-9T:-]*Z${t}active${t}[0-9]*${t}none$" &&
    echo "$list" | grep -q "^$B${t}"
ok $? "user list shows both accounts, active, no quota" || diag "$list"
"$admin" --data-dir "$D" user quota $A 5 >/dev/null &&
    "$admin" --data-dir "$D" user list | grep -q "^$A${t}.*${t}5242880$"
ok $? "user quota $A 5 shows 5 MiB in the list"
"$admin" --data-dir "$D" user disable $A >/dev/null &&
    "$admin" --data-dir "$D" user list | grep -q "^$A${t}.*${t}disabled${t}"
ok $? "user disable $A marks it disabled"
out=$(login "$D" $A)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "login failed"
ok $? "a disabled account cannot log in (clear message)" || diag "$out"
"$admin" --data-dir "$D" user enable $A >/dev/null &&
    "$admin" --data-dir "$D" user list | grep -q "^$A${t}.*${t}active${t}"
ok $? "user enable $A marks it active"
out=$(login "$D" $A)
ok $? "$A logs in again after enable" || diag "$out"

# ---- 4. user delete ---------------------------------------------------------
out=$("$admin" --data-dir "$D" user delete $B 2>&1)
rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q -- "--yes" &&
    "$admin" --data-dir "$D" user list | grep -q "^$B${t}"
ok $? "user delete without --yes refuses and keeps the account"
"$admin" --data-dir "$D" user delete $B --yes >/dev/null &&
    ! "$admin" --data-dir "$D" user list | grep -q "^$B${t}"
ok $? "user delete --yes removes the account from the list"
out=$(login "$D" $B)
[ $? -ne 0 ] && echo "$out" | grep -q "login failed"
ok $? "the deleted account cannot log in" || diag "$out"

# ---- 5. backup while serving, restore elsewhere ----------------------------
"$admin" --data-dir "$D" backup "$dir/backup/one" 2>&1 &&
    [ -f "$dir/backup/one/data.mdb" ]
ok $? "backup while the server runs"
out=$("$admin" --data-dir "$D" restore "$dir/backup/one" --force 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "in use by process $pid"
ok $? "restore refuses while a server has the store open" || diag "$out"
stop_server
ok $? "the server stops on SIGTERM with exit 0"
out=$("$admin" --data-dir "$D" restore "$dir/backup/one" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "already holds data"
ok $? "restore into a store holding data refuses without --force" ||
    diag "$out"
R="$dir/restored"
"$admin" --data-dir "$R" init >/dev/null 2>&1 &&
    out=$("$admin" --data-dir "$R" restore "$dir/backup/one" 2>&1)
ok $? "restore into a fresh, initialised data dir" || diag "$out"
[ "$(stat -c %a "$R/store/data.mdb")" = 600 ] &&
    [ "$("$admin" --data-dir "$R" user list | cut -f1)" = $A ]
ok $? "the restored store (0600) holds what was backed up"
start_server "$R"
ok $? "a server starts on the restored store"
out=$(login "$R" $A)
echo "$out" | grep -q "logged in as $A"
ok $? "$A logs in on the restored server" || diag "$out"
stop_server
"$admin" --data-dir "$D" restore "$dir/backup/one" --force >/dev/null 2>&1 &&
    [ -f "$D"/store.before-restore-*/data.mdb ] && [ -f "$D/store/data.mdb" ]
ok $? "restore --force moves the old store aside"
out=$("$admin" --data-dir "$R" restore "$dir/nothing-here" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "not a backup"
ok $? "restore of something that is not a backup fails clearly"

# ---- 6. usage errors and failures ------------------------------------------
usage_err() {
	out=$("$admin" --data-dir "$D" "$@" 2>&1)
	rc=$?
	[ $rc -eq 2 ] && [ -n "$out" ]
	ok $? "usage error exits 2 with a message: $*"
}
usage_err frobnicate
usage_err user
usage_err user frob
usage_err user quota $A lots
usage_err user disable
usage_err user list extra
usage_err invite --days 0
usage_err init --tls-cert "$D/tls/cert.pem"
usage_err restore
out=$("$admin" 2>&1)
[ $? -eq 2 ] && [ -n "$out" ]
ok $? "no command exits 2 with the usage"
out=$("$admin" --help)
rc=$?
for c in init invite status "user list" "user disable" "user enable" \
    "user delete" "user quota" backup restore; do
	echo "$out" | grep -q "^  $c" || rc=1
done
[ $rc -eq 0 ]
ok $? "--help lists every command"
for c in disable enable quota delete; do
	extra=
	[ $c = quota ] && extra=1
	[ $c = delete ] && extra=--yes
	out=$("$admin" --data-dir "$D" user $c nobody@example.org $extra 2>&1)
	rc=$?
	[ $rc -eq 1 ] && echo "$out" | grep -q "no such account"
	ok $? "user $c of an unknown address: exit 1, no such account"
done
out=$("$admin" --data-dir "$dir/absent" status 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "no store" && [ ! -e "$dir/absent" ]
ok $? "a data dir without a store is an error, not a new store"

echo "1..$n"
[ $failed -eq 0 ]

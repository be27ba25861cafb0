#!/bin/sh
# sealpost-stack end to end: up, demo accounts log in with the real client,
# a wrong password is refused, no password or recovery key reaches the
# server's files, down stops the server, up again keeps the accounts.
# TAP output.  Needs the build directory (argument 1).
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-"$top/build"}
export SEALPOST_BUILD_DIR="$build"
dir=$(mktemp -d /tmp/sp-stack-XXXXXX)
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

cleanup() {
	[ -f "$dir/server.pid" ] && "$top/scripts/sealpost-stack" down "$dir" >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT

login() {
	printf '%s\n' "$2" >"$dir/pw"
	"$build/client-core/sealpost" account login --server "$SERVER" \
	    --ca "$CA_FILE" --address "$1" --password-file "$dir/pw" 2>&1
	rc=$?
	rm -f "$dir/pw"
	return $rc
}

"$top/scripts/sealpost-stack" up "$dir" --accounts 2 >/dev/null 2>&1
ok $? "sealpost-stack up"
. "$dir/stack.env"
for k in SERVER_URL SERVER GATEWAY_SMTP BRIDGE_IMAP BRIDGE_SMTP BRIDGE_POP3 \
    BRIDGE_AUTOCONFIG BRIDGE_CA_FILE DOMAIN CA_FILE DATA_DIR USER1 \
    USER1_PASSWORD USER1_RECOVERY USER1_BRIDGE_PASSWORD USER2 \
    USER2_PASSWORD USER2_BRIDGE_PASSWORD; do
	eval "v=\${$k:-}"
	[ -n "$v" ]
	ok $? "stack.env has $k"
done
out=$(login "$USER1" "$USER1_PASSWORD")
echo "$out" | grep -q "logged in as $USER1; vault unlocked"
ok $? "user 1 logs in and unlocks the vault"
out=$(login "$USER2" "$USER2_PASSWORD")
ok $? "user 2 logs in"
printf '%s\n' "$USER1_PASSWORD" >"$dir/pw"
out=$("$build/client-core/sealpost" sync --server "$SERVER" --ca "$CA_FILE" \
    --address "$USER1" --password-file "$dir/pw" --cache "$dir/cache1" 2>&1)
rc=$?
rm -f "$dir/pw"
[ $rc -eq 0 ] && echo "$out" | grep -q "^synced $USER1: 1 messages in 6 folders"
ok $? "sealpost sync pulls the log into an encrypted local cache"
printf '%s\n' "$USER1_PASSWORD" >"$dir/pw"
out=$("$build/client-core/sealpost" ls --password-file "$dir/pw" \
    --cache "$dir/cache1" 2>&1)
rm -f "$dir/pw"
echo "$out" | grep -q "welcome@$DOMAIN.*Welcome to sealpost"
ok $? "the welcome message came through the gateway, encrypted, and decrypts here"
grep -q "msg 1: .* 250 spf=" "$dir/gateway.log"
ok $? "the gateway logged the delivery with its checks"
[ -f "$dir/cache1/cache.key" ] && [ -f "$dir/cache1/data.mdb" ]
ok $? "the local cache has its wrapped key and its store"
# The mail client's view: the stack's bridge over IMAP (STARTTLS, the
# bridge password), as Thunderbird would be set up from the printed
# settings or the bridge's autoconfig.
/usr/bin/python3 - "$BRIDGE_IMAP" "$BRIDGE_CA_FILE" "$USER1" \
    "$USER1_BRIDGE_PASSWORD" <<'PY'
import imaplib, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4(host, int(port))
m.starttls(ssl_context=ssl.create_default_context(cafile=sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
typ, n = m.select("INBOX")
typ, d = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
sys.exit(0 if b"Welcome to sealpost" in d[0][1] else 1)
PY
ok $? "the bridge serves the welcome message over IMAP with the bridge password"
curl -sf "http://$BRIDGE_AUTOCONFIG/mail/config-v1.1.xml?emailaddress=$USER1" |
    grep -q "<port>${BRIDGE_IMAP##*:}</port>"
ok $? "the bridge's autoconfig names its IMAP port for Thunderbird"
out=$(login "$USER1" "not the password")
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "login failed"
ok $? "a wrong password is refused with a clear message"
# Zero-access: no password, recovery key or secret reaches the server.
found=0
for secret in "$USER1_PASSWORD" "$USER2_PASSWORD" "$USER1_RECOVERY"; do
	grep -rqaF "$secret" "$DATA_DIR" && found=1
done
[ $found -eq 0 ]
ok $? "no password or recovery key in the server's files"
"$top/scripts/sealpost-stack" down "$dir" >/dev/null 2>&1
ok $? "sealpost-stack down"
curl -s --cacert "$CA_FILE" "https://$SERVER/health" >/dev/null 2>&1
[ $? -ne 0 ]
ok $? "the server is gone after down"
python3 -c 'import socket,sys; h,p=sys.argv[1].split(":"); socket.create_connection((h, int(p)), 1)' "$GATEWAY_SMTP" 2>/dev/null
[ $? -ne 0 ]
ok $? "the gateway is gone after down"
python3 -c 'import socket,sys; h,p=sys.argv[1].split(":"); socket.create_connection((h, int(p)), 1)' "$BRIDGE_IMAP" 2>/dev/null
[ $? -ne 0 ]
ok $? "the bridge is gone after down"
"$top/scripts/sealpost-stack" up "$dir" >/dev/null 2>&1
ok $? "sealpost-stack up again on the same directory"
out=$(login "$USER1" "$USER1_PASSWORD")
ok $? "the account survived the restart"
echo "1..$n"
[ $failed -eq 0 ]

#!/bin/sh
# The sealpost command end to end against a real server on 127.0.0.1:
# internal send between accounts (signatures checked against pinned keys,
# Bcc not leaking), a re-created account's changed key refused until
# accepted, passwd, devices, logout and recover (a new password from the
# recovery key).  Prints TAP.
#
#   test-client.sh BUILD_DIR
set -u

build=$1
sp="$build/client-core/sealpost"
server="$build/server/sealpost-server"
admin="$build/server/sealpost-admin"
tmp=$(mktemp -d /tmp/sp-client-XXXXXX)
pid=
n=0
failed=0
domain=demo.test

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	[ -f "$tmp/out" ] && sed 's/^/# out: /' "$tmp/out" | head -20
	[ -f "$tmp/err" ] && sed 's/^/# err: /' "$tmp/err" | head -20
}
# check NAME COMMAND...: ok when the command succeeds
check() {
	name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null ||
    { echo "Bail out! openssl"; exit 1; }
# Rate limits raised: this script logs in far more often per minute than
# a person does, from one address.
"$server" --listen 127.0.0.1 --port "$port" --data-dir "$tmp/data" \
    --domains "$domain" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" \
    --register-per-hour 100 --prelogin-per-minute 10000 \
    --keys-per-minute 10000 --login-failures-per-ip 1000 \
    >"$tmp/server.log" 2>&1 &
pid=$!
i=0
until curl -sf --cacert "$tmp/cert.pem" "https://127.0.0.1:$port/health" \
    >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 200 ] || { echo "Bail out! the server did not start"; exit 1; }
	sleep 0.1
done

# as USER CMD...: runs sealpost as USER (cache, password), output in
# $tmp/out and $tmp/err, status returned.
as() {
	u=$1
	shift
	SEALPOST_PASSWORD=$(cat "$tmp/$u.pw") "$sp" "$@" --cache "$tmp/$u" \
	    >"$tmp/out" 2>"$tmp/err"
}

# mkuser NAME: creates NAME@demo.test with a random password, and its
# local cache directory (settings remembered there).
mkuser() {
	head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$tmp/$1.pw"
	invite=$("$admin" --data-dir "$tmp/data" invite) || return 1
	"$sp" account create --server "127.0.0.1:$port" --ca "$tmp/cert.pem" \
	    --address "$1@$domain" --invite "$invite" \
	    --password-file "$tmp/$1.pw" --kdf-ops 2 --kdf-mem-mib 64 \
	    >"$tmp/$1.created" 2>"$tmp/err" || return 1
	rm -rf "${tmp:?}/$1"
	SEALPOST_PASSWORD=$(cat "$tmp/$1.pw") "$sp" sync --cache "$tmp/$1" \
	    --server "127.0.0.1:$port" --ca "$tmp/cert.pem" \
	    --address "$1@$domain" >"$tmp/out" 2>"$tmp/err"
}

for u in ann bob cat dan; do
	mkuser $u || { echo "Bail out! cannot create $u"; cat "$tmp/err"; exit 1; }
done
ok "four accounts"

# ---- send with flags: To bob, Bcc cat and dan, non-ASCII subject, attachment
printf 'attached bytes MARK-ATTACH\n' >"$tmp/notes.txt"
as ann send --to "Bob <bob@$domain>" --bcc "cat@$domain,dan@$domain" \
    --subject "Grüße MARK-SUBJ" --body "hello MARK-BODY" \
    --attach "$tmp/notes.txt"
check "ann sends to bob, Bcc cat and dan" grep -q \
    "sent to 3 recipients (2 Bcc)" "$tmp/out"

# fetch USER FOLDER SUBJECT-MARK: id of the first message whose line has it
fetch_id() {
	as "$1" ls "$2" && grep "$3" "$tmp/out" | head -n 1 | cut -f 1
}
id=$(fetch_id bob INBOX MARK-SUBJ)
check "bob lists it with the decoded subject" grep -q "Grüße MARK-SUBJ" \
    "$tmp/out"
as bob read "$id"
check "bob reads the body" grep -q "MARK-BODY" "$tmp/out"
check "bob's copy has the attachment" grep -q "notes.txt" "$tmp/out"
check "bob's signature is ann's pinned key" grep -q \
    "signature: valid, by the pinned key of ann@$domain" "$tmp/err"
check "bob's copy names no Bcc" sh -c "! grep -qi -e '^bcc' -e cat@ \
    -e dan@ '$tmp/out'"
check "the subject went out RFC 2047 encoded" grep -q "^Subject: =?" \
    "$tmp/out"
check "Date and Message-ID headers" sh -c "grep -q '^Date: ' '$tmp/out' && \
    grep -q '^Message-I[Dd]: <.*@$domain>' '$tmp/out'"

id=$(fetch_id cat INBOX MARK-SUBJ)
check "cat (Bcc) got it" test -n "$id"
as cat read "$id"
check "cat reads the body, signed by ann" sh -c "grep -q MARK-BODY \
    '$tmp/out' && grep -q 'pinned key of ann@' '$tmp/err'"
check "cat's copy does not name dan (the other Bcc)" sh -c \
    "! grep -q dan@ '$tmp/out'"
id=$(fetch_id dan INBOX MARK-SUBJ)
as dan read "$id"
check "dan's copy does not name cat" sh -c "grep -q MARK-BODY '$tmp/out' \
    && ! grep -q cat@ '$tmp/out'"

id=$(fetch_id ann Sent MARK-SUBJ)
check "ann's Sent copy, seen" sh -c "grep MARK-SUBJ '$tmp/out' | grep -q S"
as ann read "$id"
check "ann reads her Sent copy, signed by her" sh -c "grep -q MARK-BODY \
    '$tmp/out' && grep -q 'signature: valid, by you' '$tmp/err'"

# ---- send an RFC 5322 message from stdin, with a Bcc header and --rcpt
printf 'From: Bob <bob@%s>\r\nTo: ann@%s\r\nBcc: cat@%s\r\nSubject: re MARK-STDIN\r\n\r\nreply body\r\n' \
    $domain $domain $domain >"$tmp/msg"
SEALPOST_PASSWORD=$(cat "$tmp/bob.pw") "$sp" send --cache "$tmp/bob" \
    --rcpt "dan@$domain" <"$tmp/msg" >"$tmp/out" 2>"$tmp/err"
check "bob sends from stdin (To ann, Bcc cat, --rcpt dan)" grep -q \
    "sent to 3 recipients (2 Bcc)" "$tmp/out"
id=$(fetch_id ann INBOX MARK-STDIN)
as ann read "$id"
check "ann reads it without the Bcc header" sh -c "grep -q 'reply body' \
    '$tmp/out' && ! grep -qi '^bcc' '$tmp/out' && \
    grep -q 'pinned key of bob@' '$tmp/err'"
id=$(fetch_id dan INBOX MARK-STDIN)
check "dan, an envelope-only recipient, got it" test -n "$id"

# ---- refusals
as ann send --to "nobody@$domain" --subject x --body y
st=$?
check "no account: refused, exit 1, naming the address" sh -c "[ $st -eq 1 ] \
    && grep -q 'nobody@$domain has no sealpost account' '$tmp/err'"
printf 'From: cat@%s\r\nTo: bob@%s\r\nSubject: forged\r\n\r\nx\r\n' $domain \
    $domain >"$tmp/msg"
SEALPOST_PASSWORD=$(cat "$tmp/ann.pw") "$sp" send --cache "$tmp/ann" \
    <"$tmp/msg" >"$tmp/out" 2>"$tmp/err"
st=$?
check "a From: that is not the sender: refused" sh -c "[ $st -eq 1 ] && \
    grep -q 'From: header must be exactly your address' '$tmp/err'"

# ---- fingerprints agree at both ends
as bob fingerprint
bob_fpr=$(cut -d ' ' -f 2- "$tmp/out")
as ann fingerprint "bob@$domain"
check "ann sees bob's own fingerprint" grep -q "$bob_fpr" "$tmp/out"
as ann keys list
check "keys list shows the pins" sh -c "grep -q 'bob@$domain' '$tmp/out' && \
    grep -q 'cat@$domain' '$tmp/out'"

# ---- a re-created account has new keys: refused until accepted
"$admin" --data-dir "$tmp/data" user delete "bob@$domain" --yes \
    >/dev/null 2>&1
mkuser bob || { echo "Bail out! cannot re-create bob"; exit 1; }
as bob fingerprint
new_fpr=$(cut -d ' ' -f 2- "$tmp/out")
check "the new bob has another fingerprint" test "$new_fpr" != "$bob_fpr"
as ann send --to "bob@$domain" --subject "MARK-CHANGED" --body x
st=$?
check "send to the changed key is refused" sh -c "[ $st -eq 1 ] && \
    grep -q 'the key of bob@$domain changed' '$tmp/err' && \
    grep -q 'sealpost keys accept bob@$domain' '$tmp/err' && \
    grep -q 'nothing was sent' '$tmp/err'"
as bob ls
check "nothing reached the new bob" sh -c "! grep -q MARK-CHANGED '$tmp/out'"
as ann fingerprint "bob@$domain"
st=$?
check "fingerprint shows the pinned and the new key, exit 1" sh -c \
    "[ $st -eq 1 ] && grep -q '$bob_fpr (pinned)' '$tmp/out' && \
    grep -q '$new_fpr (the directory' '$tmp/out'"
as ann keys show "bob@$domain"
check "keys show says the directory serves another key" grep -q \
    "serves ANOTHER key: $new_fpr" "$tmp/out"
as ann keys accept "bob@$domain" --fingerprint "$bob_fpr"
st=$?
check "keys accept with a fingerprint that is not served: refused" sh -c \
    "[ $st -eq 1 ] && grep -q 'nothing was pinned' '$tmp/err'"
as ann keys accept "bob@$domain" --fingerprint "$new_fpr"
check "keys accept pins the new key" grep -q \
    "pinned the key of bob@$domain: $new_fpr" "$tmp/out"
as ann fingerprint "bob@$domain"
check "fingerprint shows the new key" sh -c "grep -q '$new_fpr' '$tmp/out' \
    && ! grep -q '$bob_fpr' '$tmp/out'"
as ann send --to "bob@$domain" --subject "MARK-AFTER" --body "after accept"
check "send works after accepting" grep -q "sent to 1 recipient" "$tmp/out"
id=$(fetch_id bob INBOX MARK-AFTER)
as bob read "$id"
check "the new bob reads it" grep -q "after accept" "$tmp/out"

# ---- to oneself, with a Cc
as ann send --to "ann@$domain" --cc "bob@$domain" --subject "MARK-SELF" \
    --body "note to self"
check "ann sends to herself, Cc bob" grep -q "sent to 2 recipients (0 Bcc)" \
    "$tmp/out"
id=$(fetch_id ann INBOX MARK-SELF)
as ann read "$id"
check "ann's inbox copy, signed by her" sh -c "grep -q 'note to self' \
    '$tmp/out' && grep -q 'signature: valid, by you' '$tmp/err'"
id=$(fetch_id bob INBOX MARK-SELF)
as bob read "$id"
check "bob's Cc copy names the Cc" sh -c "grep -q '^Cc: bob@$domain' \
    '$tmp/out' && grep -q 'pinned key of ann@' '$tmp/err'"

# ---- devices, logout
# session_ids: the ids `devices` lists (one per line, sorted)
session_ids() {
	as ann account devices && tail -n +2 "$tmp/out" | cut -d ' ' -f 1 |
	    sort
}
login_ann() {
	SEALPOST_PASSWORD=$(cat "$tmp/ann.pw") "$sp" account login \
	    --server "127.0.0.1:$port" --ca "$tmp/cert.pem" \
	    --address "ann@$domain" >"$tmp/out" 2>"$tmp/err"
}
# two more sessions, as two other devices would have
login_ann && login_ann
session_ids >"$tmp/ids1"
check "devices lists ann's sessions" sh -c "[ \$(wc -l <'$tmp/ids1') -ge 3 ] \
    && grep -q sealpost-cli '$tmp/out'"
as ann account logout
check "logout" grep -q "logged out" "$tmp/out"
session_ids >"$tmp/ids2"
# the device's session went, the next command made a new one
check "logout ended the device's session" sh -c "[ \$(comm -23 '$tmp/ids1' \
    '$tmp/ids2' | wc -l) -eq 1 ] && [ \$(comm -13 '$tmp/ids1' '$tmp/ids2' | \
    wc -l) -eq 1 ]"
victim=$(comm -12 "$tmp/ids1" "$tmp/ids2" | head -n 1)
as ann account devices --revoke "$victim"
check "devices --revoke" grep -q "revoked session $victim" "$tmp/out"
session_ids >"$tmp/ids3"
check "the revoked session is gone" sh -c "! grep -q '$victim' '$tmp/ids3' \
    && [ \$(wc -l <'$tmp/ids3') -eq \$((\$(wc -l <'$tmp/ids2') - 1)) ]"

# ---- passwd
old=$(cat "$tmp/ann.pw")
printf 'new-%s\n' "$old" >"$tmp/ann.newpw"
as ann account passwd --new-password-file "$tmp/ann.newpw" --revoke-others
check "passwd --revoke-others" sh -c "grep -q 'password changed' '$tmp/out' \
    && grep -q 'revoked [1-9][0-9]* other session' '$tmp/out'"
cp "$tmp/ann.newpw" "$tmp/ann.pw"
session_ids >"$tmp/ids4"
check "no other session is left" test "$(wc -l <"$tmp/ids4")" -eq 1
id=$(fetch_id ann Sent MARK-SUBJ)
check "the cache opens with the new password (Sent copy still there)" \
    test -n "$id"
printf '%s\n' "$old" >"$tmp/ann.pw"
login_ann
st=$?
check "the old password no longer logs in" sh -c "[ $st -eq 1 ] && \
    grep -q 'bad credentials' '$tmp/err'"
as ann ls
st=$?
check "the old password opens nothing here either" test $st -ne 0
cp "$tmp/ann.newpw" "$tmp/ann.pw"
login_ann
check "the new password logs in" grep -q "vault unlocked" "$tmp/out"

# ---- recover: the recovery key sets a new password (protocol.md 6.6)
sed -n '$p' "$tmp/cat.created" >"$tmp/rec"
printf 'recovered-%s\n' "$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    >"$tmp/cat.newpw"
rec() {
	"$sp" account recover --server "127.0.0.1:$port" --ca "$tmp/cert.pem" \
	    --address "$1@$domain" --recovery-file "$2" \
	    --new-password-file "$3" --kdf-ops 2 --kdf-mem-mib 64 \
	    >"$tmp/out" 2>"$tmp/err"
}
rec cat "$tmp/rec" "$tmp/cat.newpw"
check "recover: the recovery key sets a new password" grep -q \
    "recovered" "$tmp/out"
login_cat() {
	"$sp" account login --server "127.0.0.1:$port" --ca "$tmp/cert.pem" \
	    --address "cat@$domain" --password-file "$1" >"$tmp/out" \
	    2>"$tmp/err"
}
login_cat "$tmp/cat.pw"
check "recover: the lost password no longer logs in" grep -q \
    "bad credentials" "$tmp/err"
login_cat "$tmp/cat.newpw"
check "recover: the new password logs in and opens the same vault" grep -q \
    "vault unlocked" "$tmp/out"
rm -rf "${tmp:?}/catnew"
SEALPOST_PASSWORD=$(cat "$tmp/cat.newpw") "$sp" ls --cache "$tmp/catnew" \
    --server "127.0.0.1:$port" --ca "$tmp/cert.pem" --address "cat@$domain" \
    >"$tmp/out" 2>"$tmp/err"
check "recover: the mail is still there, readable with the same keys" \
    grep -q "MARK-SUBJ" "$tmp/out"
rec cat "$tmp/rec" "$tmp/cat.newpw"
check "recover: the recovery key still works afterwards" grep -q \
    "recovered" "$tmp/out"
sed -n '$p' "$tmp/dan.created" >"$tmp/rec.dan"
rec cat "$tmp/rec.dan" "$tmp/cat.newpw"
check "recover: another account's recovery key is refused" grep -q \
    "recovery failed" "$tmp/err"
sed 's/A/B/; s/C/D/' "$tmp/rec" >"$tmp/rec2"
cmp -s "$tmp/rec" "$tmp/rec2" && sed -i 's/^./7/' "$tmp/rec2"
rec cat "$tmp/rec2" "$tmp/cat.newpw"
check "recover: a mistyped key is caught" grep -q \
    "not a valid recovery key" "$tmp/err"

# ---- the server never saw the plaintext markers
rm -f "$tmp/out" "$tmp/err"
kill "$pid" && wait "$pid" 2>/dev/null
pid=
check "no marker in the server's data or log" sh -c "! grep -rqa \
    -e MARK-SUBJ -e MARK-BODY -e MARK-ATTACH -e MARK-STDIN -e MARK-AFTER -e MARK-SELF \
    '$tmp/data' '$tmp/server.log'"

echo "1..$n"
[ $failed -eq 0 ]

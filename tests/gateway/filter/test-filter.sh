#!/bin/sh
# The content filters against real daemons: clamd with a small custom
# signature database and rspamd with a minimal config, both started here,
# unprivileged, on free 127.0.0.1 ports and a unix socket in a temp dir;
# plus a closed port, a server that never answers and one that answers
# garbage.  filter-drive ($1) runs sp_gw_filter_run once per check.  TAP.
set -u

drive=$1
here=$(cd "$(dirname "$0")" && pwd)
helper="/usr/bin/python3 $here/helper.py"
tmp=$(mktemp -d /tmp/sp-filter.XXXXXX)
pids=""
n=0
failed=0

cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null
	done
	for p in $pids; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
diag() { sed 's/^/# /'; }

# The daemons run as nobody when we are root, as ourselves otherwise.
if [ "$(id -u)" -eq 0 ]; then
	asuser="setpriv --reuid=nobody --regid=nogroup --clear-groups"
	chown nobody "$tmp"
else
	asuser=""
fi
chmod 755 "$tmp"

# run NAME WANT_ACTION WANT_VERDICT [filter-drive args...]: the verdict
# must contain WANT_VERDICT, or equal it when that starts with "=".
run() {
	name=$1 want=$2 sub=$3
	shift 3
	out=$(timeout 120 "$drive" "$@" 2>&1)
	rc=$?
	action=$(printf '%s\n' "$out" | sed -n 's/^action=//p')
	verdict=$(printf '%s\n' "$out" | sed -n 's/^verdict=//p')
	if [ $rc -eq 0 ] && [ "$action" = "$want" ] &&
	    case "$sub" in
	    =*) [ "$verdict" = "${sub#=}" ] ;;
	    *) case "$verdict" in *"$sub"*) true ;; *) false ;; esac ;;
	    esac; then
		ok "$name"
	else
		not_ok "$name"
		echo "# want action=$want verdict~'$sub'; rc=$rc, got:"
		printf '%s\n' "$out" | diag
	fi
}

# Messages.
msg() { # FILE SUBJECT BODY
	printf 'From: sender@example.org\r\nTo: user@sealpost.test\r\n'\
'Subject: %s\r\nMessage-ID: <%s@example.org>\r\n'\
'Date: Mon, 30 Nov 2026 07:00:00 +0000\r\n\r\n%s\r\n' "$2" "$$" "$3" >"$1"
}
msg "$tmp/clean.eml" "hello" "An ordinary letter."
msg "$tmp/virus.eml" "hello" "text SEALPOST-FILTER-TEST-VIRUS-7f3a text"
msg "$tmp/gtube.eml" "hello" \
    'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
for a in add-header rewrite-subject greylist soft-reject; do
	msg "$tmp/$a.eml" "offer sealpost-$a now" "Hello."
done
$helper eicar-mime "$tmp/eicar.eml"
# Larger than clamd's StreamMaxLength (1M below).
{ msg /dev/stdout "big" "big"; head -c 1500000 /dev/zero | tr '\0' 'a' |
    fold -w 76 | sed 's/$/\r/'; } >"$tmp/big.eml"
env_args="--ip 192.0.2.10 --helo mx.example.org --from sender@example.org
    --rcpt user@sealpost.test"

# ---- clamd ----
clamd_bin=$(command -v clamd || echo /usr/sbin/clamd)
if [ -x "$clamd_bin" ]; then
	mkdir "$tmp/clamdb"
	# A body signature (.ndb, target any) for a test string and for the
	# EICAR test file, which clamd also finds inside a base64 attachment.
	/usr/bin/python3 - "$tmp/clamdb/sealpost.ndb" <<'PY'
import sys
eicar = (b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!'
         b'$H+H*')
with open(sys.argv[1], 'w') as f:
    f.write('Sealpost.Test.Eicar:0:*:%s\n' % eicar.hex())
    f.write('Sealpost.Test.String:0:*:%s\n' %
            b'SEALPOST-FILTER-TEST-VIRUS-7f3a'.hex())
PY
	cport=$($helper port)
	cat >"$tmp/clamd.conf" <<EOC
DatabaseDirectory $tmp/clamdb
LocalSocket $tmp/clamd.sock
TCPSocket $cport
TCPAddr 127.0.0.1
Foreground yes
LogFile $tmp/clamd.log
PidFile $tmp/clamd.pid
TemporaryDirectory $tmp
StreamMaxLength 1M
EOC
	[ -z "$asuser" ] || chown -R nobody "$tmp"
	$asuser "$clamd_bin" -c "$tmp/clamd.conf" >"$tmp/clamd.out" 2>&1 &
	pids="$pids $!"
	if $helper ping-clamd "$tmp/clamd.sock" 180; then
		ok "clamd starts with the custom signatures"
		run "clamd: clean message passes (unix socket)" pass \
		    "clamd: clean" --clamd "$tmp/clamd.sock" --virus reject \
		    "$tmp/clean.eml"
		run "clamd: test string rejected (TCP)" reject \
		    "clamd: Sealpost.Test.String.UNOFFICIAL FOUND" \
		    --clamd "127.0.0.1:$cport" --virus reject "$tmp/virus.eml"
		run "clamd: EICAR in a base64 attachment goes to Junk" junk \
		    "Sealpost.Test.Eicar.UNOFFICIAL FOUND" \
		    --clamd "127.0.0.1:$cport" --virus junk "$tmp/eicar.eml"
		run "clamd: by host name (localhost:PORT)" reject "FOUND" \
		    --clamd "localhost:$cport" --virus reject "$tmp/virus.eml"
		run "clamd: virus action tag" tag "FOUND" \
		    --clamd "$tmp/clamd.sock" --virus tag "$tmp/virus.eml"
		run "clamd: over StreamMaxLength, limit action pass" pass \
		    "clamd: not scanned (size limit)" \
		    --clamd "127.0.0.1:$cport" --virus reject "$tmp/big.eml"
		run "clamd: over StreamMaxLength, limit action tempfail" \
		    tempfail "not scanned (size limit)" --clamd \
		    "$tmp/clamd.sock" --limit tempfail "$tmp/big.eml"
	else
		not_ok "clamd starts with the custom signatures"
		diag <"$tmp/clamd.out"
		tail -20 "$tmp/clamd.log" 2>/dev/null | diag
	fi
else
	skip "clamd tests" "clamd not installed (clamav-daemon)"
fi

# ---- rspamd ----
if command -v rspamd >/dev/null 2>&1; then
	rport=$($helper port)
	for a in add-header rewrite-subject greylist soft-reject; do
		echo "/sealpost-$a/i" >"$tmp/$a.map"
	done
	echo "blocked@sealpost.test" >"$tmp/rcpt.map"
	echo "192.0.2.66" >"$tmp/ip.map"
	# No redis, no network lookups (DNS points at a closed port); only
	# the built-in rules, GTUBE, and multimap rules reaching each action.
	cat >"$tmp/rspamd.conf" <<EOC
options {
  pidfile = "$tmp/rspamd.pid";
  hs_cache_dir = "$tmp";
  dns { nameserver = ["127.0.0.1:9"]; timeout = 0.2s; retransmits = 1; }
}
logging { type = "file"; filename = "$tmp/rspamd.log"; level = "info"; }
worker "normal" { bind_socket = "127.0.0.1:$rport"; count = 1; }
actions { reject = 15; rewrite_subject = 11; add_header = 7; greylist = 4; }
lua = "\$RULESDIR/rspamd.lua";
modules { path = "\$PLUGINSDIR"; }
multimap {
  SP_ADD_HEADER { type = "header"; header = "Subject"; regexp = true;
    map = "$tmp/add-header.map"; score = 8.0; }
  SP_REWRITE { type = "header"; header = "Subject"; regexp = true;
    map = "$tmp/rewrite-subject.map"; score = 12.0; }
  SP_GREYLIST { type = "header"; header = "Subject"; regexp = true;
    map = "$tmp/greylist.map"; score = 5.0; }
  SP_SOFT { type = "header"; header = "Subject"; regexp = true;
    map = "$tmp/soft-reject.map"; action = "soft reject"; }
  SP_RCPT { type = "rcpt"; map = "$tmp/rcpt.map"; score = 8.0; }
  SP_IP { type = "ip"; map = "$tmp/ip.map"; score = 8.0; }
}
EOC
	[ -z "$asuser" ] || chown -R nobody "$tmp"
	$asuser rspamd -f -c "$tmp/rspamd.conf" --var="LOCAL_CONFDIR=$tmp" \
	    >"$tmp/rspamd.out" 2>&1 &
	pids="$pids $!"
	R="--rspamd 127.0.0.1:$rport"
	# rspamd compiles its URL suffix tables at start: allow it time.
	if $helper ping-rspamd "$rport" 300; then
		ok "rspamd starts with the minimal config"
		# shellcheck disable=SC2086
		{
		run "rspamd: ham passes" pass "rspamd: no action" $R \
		    --spam reject $env_args "$tmp/clean.eml"
		run "rspamd: GTUBE rejected" reject "rspamd: reject score=" \
		    $R --spam reject $env_args "$tmp/gtube.eml"
		run "rspamd: GTUBE with spam action junk" junk \
		    "rspamd: reject" $R --spam junk $env_args "$tmp/gtube.eml"
		run "rspamd: add header -> suspect action junk" junk \
		    "rspamd: add header score=8." $R --spam reject \
		    --suspect junk $env_args "$tmp/add-header.eml"
		run "rspamd: add header -> spam action when no suspect" tag \
		    "rspamd: add header" $R --spam tag $env_args \
		    "$tmp/add-header.eml"
		run "rspamd: rewrite subject -> suspect action tag" tag \
		    "rspamd: rewrite subject score=12." $R --spam reject \
		    --suspect tag $env_args "$tmp/rewrite-subject.eml"
		run "rspamd: greylist -> tempfail" tempfail \
		    "rspamd: greylist" $R --spam reject $env_args \
		    "$tmp/greylist.eml"
		run "rspamd: soft reject -> tempfail" tempfail \
		    "rspamd: soft reject" $R --spam reject $env_args \
		    "$tmp/soft-reject.eml"
		run "rspamd: envelope Rcpt reaches rspamd" junk \
		    "rspamd: add header" $R --suspect junk --ip 192.0.2.10 \
		    --helo mx.example.org --from sender@example.org \
		    --rcpt user@sealpost.test --rcpt blocked@sealpost.test \
		    "$tmp/clean.eml"
		run "rspamd: envelope IP reaches rspamd" junk \
		    "rspamd: add header" $R --suspect junk --ip 192.0.2.66 \
		    --helo mx.example.org --from "" \
		    --rcpt user@sealpost.test "$tmp/clean.eml"
		}
	else
		not_ok "rspamd starts with the minimal config"
		diag <"$tmp/rspamd.out"
		grep -iE 'error|cannot|fatal' "$tmp/rspamd.log" 2>/dev/null |
		    tail -20 | diag
	fi
else
	skip "rspamd tests" "rspamd not installed"
fi

# ---- both, strongest wins ----
if [ -S "$tmp/clamd.sock" ] && [ -n "${R:-}" ]; then
	# shellcheck disable=SC2086
	{
	cat "$tmp/gtube.eml" "$tmp/virus.eml" >"$tmp/both.eml"
	run "both: reject (rspamd) beats junk (clamd), both in verdict" \
	    reject "clamd: Sealpost.Test.String.UNOFFICIAL FOUND; rspamd: reject" \
	    --clamd "$tmp/clamd.sock" --virus junk $R --spam reject \
	    $env_args "$tmp/both.eml"
	run "both: a clamd reject skips rspamd" reject \
	    "=clamd: Sealpost.Test.String.UNOFFICIAL FOUND" \
	    --clamd "$tmp/clamd.sock" --virus reject $R --spam junk \
	    $env_args "$tmp/both.eml"
	run "both: clean message passes both" pass \
	    "clamd: clean; rspamd: no action score=" --clamd "$tmp/clamd.sock" \
	    --virus reject $R --spam reject $env_args "$tmp/clean.eml"
	# The gateway calls from several worker threads at once: every
	# result must be the same.  The rate is printed, never asserted.
	run "both: 4 threads x 10 runs agree" reject \
	    "clamd: Sealpost.Test.String.UNOFFICIAL FOUND; rspamd: reject" \
	    --clamd "$tmp/clamd.sock" --virus junk $R --spam reject \
	    $env_args --threads 4 --repeat 10 "$tmp/both.eml"
	printf '%s\n' "$out" | grep '^# runs='
	{ msg /dev/stdout "minutes" "Dear colleagues,"; i=0
	  while [ $i -lt 880 ]; do
		printf 'Item %d: the committee reviewed the budget and agreed.\r\n' $i
		i=$((i + 1))
	  done; } >"$tmp/50k.eml"
	run "both: 50 KB message, 2 threads x 25 runs agree" pass \
	    "clamd: clean; rspamd: " --clamd "$tmp/clamd.sock" \
	    --virus reject $R --spam reject $env_args --threads 2 \
	    --repeat 25 "$tmp/50k.eml"
	printf '%s\n' "$out" | grep '^# runs='
	run "clamd alone: 50 KB message, 1 thread x 25 runs agree" pass \
	    "=clamd: clean" --clamd "$tmp/clamd.sock" --repeat 25 \
	    "$tmp/50k.eml"
	printf '%s\n' "$out" | grep '^# runs='
	run "rspamd alone: 50 KB message, 1 thread x 25 runs agree" pass \
	    "rspamd: no action" $R --spam reject $env_args --repeat 25 \
	    "$tmp/50k.eml"
	printf '%s\n' "$out" | grep '^# runs='
	}
else
	skip "both filters together" "clamd or rspamd not running"
fi

# ---- failures: fail-open and fail-closed ----
dead=$($helper port) # nothing listens there
run "unreachable rspamd, fail-closed: tempfail" tempfail \
    "rspamd: unavailable (connection refused)" --rspamd "127.0.0.1:$dead" \
    "$tmp/clean.eml"
run "unreachable rspamd, fail-open: pass" pass \
    "rspamd: unavailable (connection refused)" --rspamd "127.0.0.1:$dead" \
    --fail-open "$tmp/clean.eml"
run "missing clamd socket, fail-closed: tempfail" tempfail \
    "clamd: unavailable (no such socket)" --clamd "$tmp/nothing.sock" \
    "$tmp/clean.eml"
run "unreachable clamd, fail-open: pass" pass \
    "clamd: unavailable (connection refused)" --clamd "127.0.0.1:$dead" \
    --fail-open "$tmp/clean.eml"

$helper silent "$tmp/silent.port" &
pids="$pids $!"
$helper garbage "$tmp/garbage.port" &
pids="$pids $!"
i=0
while { [ ! -s "$tmp/silent.port" ] || [ ! -s "$tmp/garbage.port" ]; } &&
    [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
silent=127.0.0.1:$(cat "$tmp/silent.port")
garbage=127.0.0.1:$(cat "$tmp/garbage.port")
run "silent rspamd: timeout, fail-closed" tempfail \
    "rspamd: unavailable (timed out)" --rspamd "$silent" --timeout 500 \
    "$tmp/clean.eml"
run "silent clamd: timeout, fail-open" pass \
    "clamd: unavailable (timed out)" --clamd "$silent" --timeout 500 \
    --fail-open "$tmp/clean.eml"
run "silent clamd, big message: timeout while sending" tempfail \
    "clamd: unavailable (timed out)" --clamd "$silent" --timeout 500 \
    "$tmp/big.eml"
run "garbage from rspamd: malformed reply" tempfail \
    "rspamd: unavailable (malformed reply)" --rspamd "$garbage" \
    "$tmp/clean.eml"
run "garbage from clamd: malformed reply, fail-open" pass \
    "clamd: unavailable (malformed reply)" --clamd "$garbage" --fail-open \
    "$tmp/clean.eml"

echo "1..$n"
[ $failed -eq 0 ]

#!/usr/bin/env bash
# bench/abuse.sh — the floods of review-security.md against the real binary
# (SPEC §9, issue 13), one after the other on one provbox with 1,000 phones:
# what each flood sent and what came back, the admin API's latency and a
# phone's own fetch while it lasts, memory before, at the peak and after
# (< 80 MB again within 60 s), and descriptors. Loopback (127.0.0.0/8) only.
# See bench/README.md.
#
#   bench/abuse.sh
#   DUR=5s RESULTS=- bench/abuse.sh
#
# Knobs (environment): DUR (each flood, 10s), KINDS ("tftp guess pnp
# discover slowloris"), PHONES (1000), RESULTS (bench/results/abuse-<date>.txt;
# "-" for stdout only), KEEP=1 keeps the work directory.
#
# provbox runs at the default log level (info), as an appliance does: the
# log's size during each flood is part of what is measured.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
DUR=${DUR:-10s}
KINDS=${KINDS:-tftp guess pnp discover slowloris}
PHONES=${PHONES:-1000}
RESULTS=${RESULTS:-bench/results/abuse-$(date +%Y-%m-%d).txt}
ADMIN_PW=bench-admin-password

log() { echo "abuse.sh: $*" >&2; }
die() { log "$*"; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/abusebench.XXXXXX)
PB=""
cleanup() {
	if [ -n "$PB" ]; then
		kill -TERM "$PB" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$PB" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$PB" 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # tcp|udp: sets PORT
	local p flag=-Htln
	[ "$1" = udp ] && flag=-Huln
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if [ -z "$(ss $flag "sport = :$p")" ] && [[ "${USED:-} " != *" $p "* ]]; then USED="${USED:-} $p"; PORT=$p; return; fi
	done
	die "no free $1 port"
}

log "building provbox and flood"
mkdir -p "$WORK/bin"
CGO_ENABLED=1 $GO build -trimpath -ldflags "-s -w" -o "$WORK/bin/provbox" ./cmd/provbox
$GO build -o "$WORK/bin/" ./bench/cmd/flood
PROVBOX=$WORK/bin/provbox FLOOD=$WORK/bin/flood

free_port tcp; HTTP_PORT=$PORT
free_port udp; TFTP_PORT=$PORT
free_port udp; SIP_PORT=$PORT
BASE=http://127.0.0.1:$HTTP_PORT
API=$BASE/api/v1
DATA=$WORK/data
printf '[sip]\npnp = false\n' >"$WORK/provbox.toml"
echo "$ADMIN_PW" | "$PROVBOX" user add admin --password-stdin --data "$DATA" --config "$WORK/provbox.toml" >/dev/null

# 1,000 phones on one shared extension, imported as CSV.
{
	echo "mac,name,model,position,key_type,key_value"
	for i in $(seq 0 $((PHONES - 1))); do printf '0015652%05x,Phone %d,T46G,1,account,1001\n' "$i" "$i"; done
} >"$WORK/phones.csv"
"$PROVBOX" serve --config "$WORK/provbox.toml" --data "$DATA" --http "127.0.0.1:$HTTP_PORT" --https off \
	--tftp "127.0.0.1:$TFTP_PORT" --sip "127.0.0.1:$SIP_PORT" >"$WORK/provbox.log" 2>&1 &
PB=$!
for _ in $(seq 200); do curl -sf --max-time 1 "$BASE/healthz" >/dev/null && break; sleep 0.05; done
curl -sf -u "admin:$ADMIN_PW" -d '{"number":"1001","name":"Shared","password":"bench-sip-secret-1001"}' "$API/extensions" >/dev/null
curl -sf -u "admin:$ADMIN_PW" -H 'Content-Type: text/csv' --data-binary @"$WORK/phones.csv" "$API/phones.csv" >/dev/null
MAC=001565200000
SECRET=$(curl -sf -u "admin:$ADMIN_PW" "$API/phones/$MAC/secret" | sed 's/.*"password":"\([^"]*\)".*/\1/')
curl -sf -u "$MAC:$SECRET" "$BASE/prov/$MAC.cfg" >/dev/null || die "the probe phone cannot fetch its file"
sleep 2

OUT=$WORK/runs.txt
: >"$OUT"
for kind in $KINDS; do
	before=$(stat -c %s "$WORK/provbox.log")
	log "flood: $kind for $DUR"
	"$FLOOD" -kind "$kind" -pid "$PB" -http "$BASE" -tftp "127.0.0.1:$TFTP_PORT" -sip "127.0.0.1:$SIP_PORT" \
		-user admin -pass "$ADMIN_PW" -phone "$MAC" -phone-user "$MAC" -phone-secret "$SECRET" -dur "$DUR" | tee -a "$OUT" >&2
	after=$(stat -c %s "$WORK/provbox.log")
	echo "log: kind=$kind bytes=$((after - before))" | tee -a "$OUT" >&2
	kill -0 "$PB" 2>/dev/null || die "provbox died during the $kind flood"
	sleep 2
done
DISC=$(curl -sf -u "admin:$ADMIN_PW" -D - -o /dev/null "$API/discovered?limit=1" | awk -F': ' 'tolower($1) == "x-total-count" {print $2+0}')

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
{
	echo "provbox abuse benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(git describe --always --dirty 2>/dev/null || echo "${BENCH_COMMIT:-?}"))"
	echo "machine: $(nproc) CPU ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3)"
	echo "provbox: $PHONES phones, log level info, each flood $DUR from loopback addresses; the probes ask every 50 ms"
	echo
	printf "%-10s %9s %11s %11s %-44s %9s %9s %7s %22s %10s %9s\n" flood sent "bytes out" "bytes back" "answers" "admin p50" "admin p99" "errors" "RSS before/peak/after" "fds peak" "log bytes"
	while read -r line; do
		case $line in
		flood:*)
			k=$(field kind "$line")
			lb=$(sed -n "s/^log: kind=$k bytes=//p" "$OUT")
			printf "%-10s %9s %11s %11s %-44s %9s %9s %7s %22s %10s %9s\n" "$k" "$(field sent "$line")" "$(field bytes_out "$line")" "$(field bytes_back "$line")" \
				"$(field answers "$line" | cut -c1-44)" "$(field admin_p50 "$line")" "$(field admin_p99 "$line")" "$(field admin_errors "$line")/$(field phone_errors "$line")" \
				"$(field rss_before_mb "$line")/$(field rss_peak_mb "$line")/$(field rss_after_mb "$line") MB" "$(field fds_peak "$line")" "$lb"
			;;
		esac
	done <"$OUT"
	echo
	echo "errors: admin API / the phone's own fetch that failed during the flood. Discovered rows at the end: $DISC"
	echo
	echo "all lines:"
	sed 's/^/  /' "$OUT"
} >"$WORK/summary.txt"
cat "$WORK/summary.txt"
if [ "$RESULTS" != - ]; then
	mkdir -p "$(dirname "$RESULTS")"
	cp "$WORK/summary.txt" "$RESULTS"
	log "wrote $RESULTS"
fi

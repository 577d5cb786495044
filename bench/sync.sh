#!/usr/bin/env bash
# bench/sync.sh — sync benchmarks (SPEC §8, issue 12): edit → check-sync NOTIFY
# received by a phone (p99 < 50 ms) and edit → synced (the phone's own report);
# one edit affecting 1,000 phones → all synced with the default settings
# (< 3 s), its API round trip (< 100 ms), the peak number of phones fetching
# at once and told-but-not-fetched (sip.notify_window, 100), and provbox's
# memory with 1,000 phones (< 60 MB). Phones are emulated by cmd/phonesim on
# loopback addresses and register with bench/cmd/registrar on 127.0.0.2;
# traffic stays in 127.0.0.0/8. See bench/README.md.
#
#   bench/sync.sh
#   RUNS=1 RESULTS=- bench/sync.sh
#
# A Yealink confirms a change without a reboot only when it re-registers an
# account (setup_autop_finish is sent after power-on provisioning only; see
# README "Sync"), so "synced" is measured with a password change of the
# extension the phones register (a shared line on all 1,000 phones; each
# phone's own extension for the edit run); a line-key change is measured to
# "fetched", which is all a phone says about it.
#
# Knobs (environment): EDITS (200), EDIT_PHONES (10), EDIT_GAP (60ms between
# edits, so each phone is edited every EDIT_PHONES × EDIT_GAP = 600 ms, past
# the 500 ms coalescing window), EDIT_DELAY (seconds from the phones' boot to
# the first edit: 1), BULK_PHONES (1000), RUNS (bulk runs, each a key edit
# and a password edit: 3), IDLE_WAIT (seconds of quiet before the idle RSS is
# read: 5), IP_BASE (first phone address: 127.42.0.1), RESULTS
# (bench/results/sync-<date>.txt; "-" for stdout only), KEEP=1 keeps the work
# directory, VERBOSE=1 lists every edit, BENCH_COMMIT names the code measured
# when not run from a git checkout, PARTS ("edits bulk": part 1, edit ->
# synced, and part 2, one edit on BULK_PHONES phones; e.g. PARTS=bulk RUNS=3
# for the 1,000-phone key PATCH alone).
#
# provbox runs with --log-level warn (at info it logs every fetch and every
# NOTIFY, and the benchmark would measure the logger).
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
EDITS=${EDITS:-200}
EDIT_PHONES=${EDIT_PHONES:-10}
EDIT_GAP=${EDIT_GAP:-60ms}
EDIT_DELAY=${EDIT_DELAY:-1}
BULK_PHONES=${BULK_PHONES:-1000}
RUNS=${RUNS:-3}
IDLE_WAIT=${IDLE_WAIT:-5}
IP_BASE=${IP_BASE:-127.42.0.1}
RESULTS=${RESULTS:-bench/results/sync-$(date +%Y-%m-%d).txt}
ADMIN_PW=bench-admin-password
PHONE_PORT=5060
EDIT_MAC=0015651e0000 # phonesim -first-mac of the edit run
BULK_MAC=001565200000 # and of the bulk run

log() { echo "sync.sh: $*" >&2; }
part() { [[ " ${PARTS:-edits bulk} " == *" $1 "* ]]; }
die() { log "$*"; exit 1; }

case $IP_BASE in 127.*) ;; *) die "IP_BASE=$IP_BASE: phones must be on loopback (127.0.0.0/8)" ;; esac
# phonesim: a UDP socket per phone plus a TCP connection per fetch.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((2 * BULK_PHONES + 256)) ] || die "open-file limit $(ulimit -n) is too low for $BULK_PHONES phones"

# --- cleanup: every process we start runs in its own session (setsid), and is
# stopped through its process group.
WORK=$(mktemp -d /tmp/syncbench.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME LOG CMD...: runs CMD in the background in a new session, stdout
# and stderr to LOG; sets PID_<NAME>.
start() {
	local name=$1 out=$2; shift 2
	setsid "$@" >"$out" 2>&1 </dev/null &
	PIDS+=($!)
	eval "PID_$name=$!"
}

# stop PID: SIGTERM to its group, SIGKILL after 5 s; waits for it.
stop() {
	local p=$1 q=() x
	kill -TERM -- "-$p" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- "-$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	for x in "${PIDS[@]}"; do [ "$x" = "$p" ] || q+=("$x"); done
	PIDS=("${q[@]}")
}

# free_port tcp|udp: sets PORT to an unused port on 127.0.0.1 (not one
# handed out before).
USED_PORTS=""
free_port() {
	local p flag=-Htln
	[ "$1" = udp ] && flag=-Huln
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if [ -z "$(ss $flag "sport = :$p")" ] && [[ "$USED_PORTS " != *" $p "* ]]; then
			USED_PORTS="$USED_PORTS $p"
			PORT=$p
			return
		fi
	done
	die "no free $1 port"
}

# wait_for LOG PID CHECK...: polls CHECK (10 s at most) while PID lives.
wait_for() {
	local out=$1 pid=$2; shift 2
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; die "$pid exited"; }
		if "$@" >/dev/null 2>&1; then return; fi
		sleep 0.05
	done
	cat "$out" >&2
	die "$pid did not come up"
}

# cpu_ticks PID: user + system CPU time of PID, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# kb FIELD PID: a /proc/PID/status field in kB (VmHWM, VmRSS, RssAnon, RssFile).
kb() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$2/status"; }
# gomem: goroutines, Go runtime memory from the OS (sys) and heap in use,
# from provbox's /metrics, as key=value pairs (kB).
gomem() {
	curl -sf --max-time 5 "$BASE/metrics" | awk '
		$1 == "go_goroutines" { g = $2 }
		$1 == "go_memstats_sys_bytes" { s = $2 }
		$1 == "go_memstats_heap_inuse_bytes" { h = $2 }
		END { printf "goroutines=%d go_sys_kb=%d heap_inuse_kb=%d", g, s / 1024, h / 1024 }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# --- build ---------------------------------------------------------------------
log "building provbox, phonesim and syncload"
mkdir -p "$WORK/bin"
CGO_ENABLED=1 $GO build -trimpath -ldflags "-s -w" -o "$WORK/bin/provbox" ./cmd/provbox
$GO build -o "$WORK/bin/" ./cmd/phonesim ./bench/cmd/syncload ./bench/cmd/registrar
PROVBOX=$WORK/bin/provbox
PHONESIM=$WORK/bin/phonesim
SYNCLOAD=$WORK/bin/syncload
REGISTRAR=$WORK/bin/registrar
export SYNCLOAD_PASSWORD=$ADMIN_PW

# The phones' SIP sockets are IP_BASE+i:5060: nothing else may hold them.
prefix=${IP_BASE%.*.*}
if ss -Huln "sport = :$PHONE_PORT" | awk '{print $4}' | grep -q "^${prefix//./\\.}\."; then
	die "a UDP socket on ${prefix}.*:$PHONE_PORT is in use (another phonesim?); set IP_BASE"
fi

free_port tcp; HTTP_PORT=$PORT
free_port tcp; HTTPS_PORT=$PORT # phones keep this URL across restarts of serve
free_port udp; SIP_PORT=$PORT
BASE=http://127.0.0.1:$HTTP_PORT
API=$BASE/api/v1
# The registrar the phones' accounts register with.
PORT=$((20000 + RANDOM % 40000))
for _ in $(seq 50); do [ -z "$(ss -Huln "sport = :$PORT")" ] && break; PORT=$((20000 + RANDOM % 40000)); done
REG=127.0.0.2:$PORT
start registrar "$WORK/registrar.log" "$REGISTRAR" -listen "$REG"
wait_for "$WORK/registrar.log" "$PID_registrar" grep -q listening "$WORK/registrar.log"

# config RATE FILE: the config file ("" rate: notify_rate left at its default).
config() {
	{
		echo "[sip]"
		echo "phone_port = $PHONE_PORT"
		echo "pnp = false"
		[ -z "$1" ] || echo "notify_rate = $1"
	} >"$2"
}

# serve NAME DATA CONFIG: starts provbox serve, sets PB (its pid).
serve() {
	start "$1" "$WORK/$1.log" "$PROVBOX" serve --config "$3" --data "$2" \
		--http "127.0.0.1:$HTTP_PORT" --https "127.0.0.1:$HTTPS_PORT" --tftp off --sip "127.0.0.1:$SIP_PORT" --log-level warn
	PB=$(eval echo "\$PID_$1")
	wait_for "$WORK/$1.log" "$PB" curl -sf --max-time 1 "$BASE/healthz"
}

# phonesim NAME N FIRST_MAC: phones booting from provbox; stdout (JSON
# lines) to $WORK/NAME.jsonl, stderr to $WORK/NAME.err; sets PS (its pid).
# -duration bounds it should the trap never run.
phonesim() {
	start "$1" "$WORK/$1.jsonl" timeout 300 "$PHONESIM" -n "$2" -first-mac "$3" -ip-base "$IP_BASE" \
		-prov "$BASE/prov/" -sip-port "$PHONE_PORT" -duration 240s
	PS=$(eval echo "\$PID_$1")
}
# phonesim's stderr goes with its stdout into the .jsonl; syncload skips the
# lines that are not JSON.

OUT=$WORK/out.txt
: >"$OUT"
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
csv_header="mac,name,description,location,manufacturer,model,position,key_type,key_value,key_label"

if part edits; then
# --- 1: edit → NOTIFY received → synced, over EDIT_PHONES phones -----------------
log "1: $EDITS edits over $EDIT_PHONES phones, one every $EDIT_GAP"
D1=$WORK/data-edits
echo "$ADMIN_PW" | "$PROVBOX" user add admin --password-stdin --data "$D1" >/dev/null
config "" "$WORK/edits.toml"
serve provbox1 "$D1" "$WORK/edits.toml"
PB1=$PB
# Each phone: its own extension 3000+i (keys 1-2), registered at $REG, so a
# change of its password changes that phone only, which re-registers and
# reports; and a BLF key on key 3.
for i in $(seq 0 $((EDIT_PHONES - 1))); do
	curl -sf --max-time 10 -u "admin:$ADMIN_PW" -d "{\"number\":\"$((3000 + i))\",\"name\":\"Edit $i\",\"password\":\"x\",\"sip_server\":\"$REG\"}" "$API/extensions" >/dev/null
done
awk -v n="$EDIT_PHONES" -v oui="${EDIT_MAC:0:6}" -v base=$((16#${EDIT_MAC:6})) -v h="$csv_header" 'BEGIN {
	print h
	for (i = 0; i < n; i++) {
		mac = sprintf("%s%06x", oui, base + i)
		printf "%s,Edit %d,bench,,Yealink,T46G,1,account,%d,\n", mac, i, 3000 + i
		printf "%s,,,,,,2,account,%d,\n", mac, 3000 + i
		printf "%s,,,,,,3,blf,1002,Bob\n", mac
	}
}' >"$WORK/edits.csv"
curl -sf --max-time 30 -u "admin:$ADMIN_PW" -H 'Content-Type: text/csv' --data-binary "@$WORK/edits.csv" "$API/phones.csv" >/dev/null ||
	die "import of $EDIT_PHONES phones failed"
phonesim sim1 "$EDIT_PHONES" "$EDIT_MAC"
timeout 30 "$SYNCLOAD" -mode booted -events "$WORK/sim1.jsonl" -n "$EDIT_PHONES" -timeout 20s >&2
# The import scheduled a trigger for every new phone; the sync loop skips
# them (no address yet) but still starts their 500 ms coalescing window, which
# would hold back the first edits (README: "findings"). Let it pass.
sleep "$EDIT_DELAY"
timeout 120 "$SYNCLOAD" -mode edits -api "$API" -events "$WORK/sim1.jsonl" -n "$EDITS" -phones "$EDIT_PHONES" \
	-gap "$EDIT_GAP" -label edits -timeout 90s ${VERBOSE:+-v} | tee -a "$OUT" >&2 || die "edit run failed"
E_LINE=$(grep 'mode=edits' "$OUT")
E_HWM=$(kb VmHWM "$PB1")
stop "$PS"
stop "$PB1"
grep -q '"level":"\(WARN\|ERROR\)"' "$WORK/provbox1.log" && { log "provbox (edits) logged:"; head -5 "$WORK/provbox1.log" >&2; }
fi

if part bulk; then
# --- 2: one edit on BULK_PHONES phones, default settings -----------------------------
log "2: one edit on $BULK_PHONES phones, $RUNS runs (a key: all fetched; the shared line's password: all synced)"
D2=$WORK/data-bulk
echo "$ADMIN_PW" | "$PROVBOX" user add admin --password-stdin --data "$D2" >/dev/null
# A setup daemon takes the import and serves the phones' boot; then a fresh
# daemon on the same data, ports and (running) phones runs the edits: it
# starts with an empty schedule (README: findings).
config "" "$WORK/bulk.toml"
serve provbox2 "$D2" "$WORK/bulk.toml"
PB2=$PB
curl -sf --max-time 10 -u "admin:$ADMIN_PW" -d "{\"number\":\"1001\",\"name\":\"Main line\",\"password\":\"x\",\"sip_server\":\"$REG\"}" "$API/extensions" >/dev/null
# Each phone: the shared line 1001 on keys 1-2, and the same BLF key (1002,
# "Bob") on key 3.
awk -v n="$BULK_PHONES" -v oui="${BULK_MAC:0:6}" -v base=$((16#${BULK_MAC:6})) -v h="$csv_header" 'BEGIN {
	print h
	for (i = 0; i < n; i++) {
		mac = sprintf("%s%06x", oui, base + i)
		printf "%s,Phone %d,bench,,Yealink,T46G,1,account,1001,\n", mac, i
		printf "%s,,,,,,2,account,1001,\n", mac
		printf "%s,,,,,,3,blf,1002,Bob\n", mac
	}
}' >"$WORK/bulk.csv"
t0=$(date +%s%N)
curl -sf --max-time 60 -u "admin:$ADMIN_PW" -H 'Content-Type: text/csv' --data-binary "@$WORK/bulk.csv" "$API/phones.csv" >"$WORK/import.json" ||
	die "import of $BULK_PHONES phones failed"
IMPORT_MS=$((($(date +%s%N) - t0) / 1000000))
log "imported in $IMPORT_MS ms: $(cat "$WORK/import.json")"
phonesim sim2 "$BULK_PHONES" "$BULK_MAC"
timeout 90 "$SYNCLOAD" -mode booted -events "$WORK/sim2.jsonl" -n "$BULK_PHONES" -timeout 80s | tee -a "$OUT" >&2
BOOT_MS=$(grep -m1 '"event":"booted"' "$WORK/sim2.jsonl" | sed -n 's/.*"ms":\([0-9.]*\).*/\1/p')
sleep 2 # the boot reports (provisioned, registered) arrive
BOOT_RSS=$(kb VmRSS "$PB2")
SETUP_HWM=$(kb VmHWM "$PB2")
stop "$PB2"

serve provbox3 "$D2" "$WORK/bulk.toml"
PB3=$PB
sleep 1
RSS0=$(kb VmRSS "$PB3")
cpu0=$(cpu_ticks "$PB3")
for run in $(seq "$RUNS"); do
	for edit in key password; do
		log "2: run $run, $edit"
		timeout 150 "$SYNCLOAD" -mode bulk -edit "$edit" -api "$API" -events "$WORK/sim2.jsonl" -phones "$BULK_PHONES" \
			-label "run$run" -poll 250ms -timeout 60s | tee -a "$OUT" >&2 || die "bulk run $run ($edit) failed"
		sleep 1
	done
done
cpu1=$(cpu_ticks "$PB3")
sleep "$IDLE_WAIT"
echo "rss: pid=$PB3 cpu_s=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$HZ" 'BEGIN { printf "%.2f", (b - a) / hz }') rss_before_kb=$RSS0 idle_rss_kb=$(kb VmRSS "$PB3") idle_anon_kb=$(kb RssAnon "$PB3") idle_file_kb=$(kb RssFile "$PB3") hwm_kb=$(kb VmHWM "$PB3") $(gomem) " |
	tee -a "$OUT" >&2
FINAL_PHONES=$(curl -sf --max-time 10 -u "admin:$ADMIN_PW" "$API/phones" | jq -r '[.[] | .sync.state] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' 2>/dev/null || echo "?")
stop "$PB3"
stop "$PS"
SIM_SUMMARY=$(grep '"event":"summary"' "$WORK/sim2.jsonl" | tail -1)
for f in "$WORK"/provbox2.log "$WORK"/provbox3.log; do
	if grep -q '"level":"\(WARN\|ERROR\)"' "$f"; then log "$(basename "$f") logged:"; head -5 "$f" >&2; fi
done
fi
SIM_ERRORS=$(cat "$WORK"/sim*.jsonl 2>/dev/null | grep -c '"event":"error"' || true)

# --- summary ---------------------------------------------------------------------------
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "" && v != "NaN" && v + 0 < t) ? "PASS" : "MISS" }'; }
# stats EDIT FIELD: "median (min-max)" of FIELD over the bulk runs of EDIT.
stats() {
	grep "mode=bulk .*edit=$1 " "$OUT" | sed -n "s/.* $2=\([^ ]*\).*/\1/p" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "?"; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%g (%g-%g)", m, v[1], v[NR] }'
}
median() { stats "$1" "$2" | cut -d' ' -f1; }
R=$(grep '^rss: ' "$OUT" || true)
{
	echo "provbox bench/sync.sh — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "commit ${BENCH_COMMIT:-$(git describe --always --dirty 2>/dev/null || echo unknown)}; $($GO version | cut -d' ' -f3-4); $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); kernel $(uname -r)"
	echo "phones: cmd/phonesim on $IP_BASE+ (SIP port $PHONE_PORT; a faithful Yealink: answers check-sync 200 OK, re-fetches over HTTPS with its secret, MD5-skips, re-registers changed accounts at $REG and reports through its action URLs); provbox --log-level warn, sip.pnp = false, sync defaults (notify_rate 500, notify_window 100)"
	echo "phonesim, the registrar and the driver share the CPUs with provbox; times are Unix ns of one clock (edit: just before the PATCH; NOTIFY: when the phone read the datagram; report: when provbox answered it)."
	if part edits; then
	echo
	echo "1. edit -> synced: $(field n "$E_LINE") edits (PATCH /extensions/{id} password of the one phone it is on), round-robin over $(field phones "$E_LINE") phones, one every $EDIT_GAP"
	printf "  %-28s p50 %8s ms  p99 %8s ms  max %8s ms   (target p99 < 50 ms: %s)\n" "edit -> NOTIFY received" \
		"$(field notify_p50 "$E_LINE")" "$(field notify_p99 "$E_LINE")" "$(field notify_max "$E_LINE")" "$(verdict "$(field notify_p99 "$E_LINE")" 50)"
	printf "  %-28s p50 %8s ms  p99 %8s ms  max %8s ms\n" "edit -> re-fetch done" \
		"$(field refetch_p50 "$E_LINE")" "$(field refetch_p99 "$E_LINE")" "$(field refetch_max "$E_LINE")"
	printf "  %-28s p50 %8s ms  p99 %8s ms  max %8s ms\n" "edit -> synced (its report)" \
		"$(field synced_p50 "$E_LINE")" "$(field synced_p99 "$E_LINE")" "$(field synced_max "$E_LINE")"
	printf "  %-28s p50 %8s ms  p99 %8s ms  max %8s ms\n" "PATCH round trip" \
		"$(field api_p50 "$E_LINE")" "$(field api_p99 "$E_LINE")" "$(field api_max "$E_LINE")"
	echo "  matched $(field matched "$E_LINE")/$(field n "$E_LINE"); NOTIFYs $(field notifies "$E_LINE"), retransmissions $(field retransmits "$E_LINE"), stale re-fetches $(field stale_etag "$E_LINE"); synced at the end $(field synced_end "$E_LINE"); provbox peak RSS $(mib "$E_HWM") MiB"
	fi
	if part bulk; then
	echo
	echo "2. one edit on all $BULK_PHONES phones, default settings; $RUNS runs, median (min-max)"
	echo "  setup daemon: CSV import of $BULK_PHONES phones $IMPORT_MS ms; phonesim boot of $BULK_PHONES phones ${BOOT_MS} ms; RSS after the boot $(mib "$BOOT_RSS") MiB, peak $(mib "$SETUP_HWM") MiB"
	echo "  the edits: a fresh daemon on the same data (phones settled, schedule empty), RSS 1 s after its start $(mib "$(field rss_before_kb "$R")") MiB"
	echo "  a) the shared line's password -> all synced (each phone re-fetched, re-registered and reported)"
	printf "    %-34s %s ms   (target < 3 s: %s)\n" "all synced (phones' clock)" "$(stats password done_ms)" "$(verdict "$(median password done_ms)" 3000)"
	printf "    %-34s %s s\n" "all synced, seen by the API" "$(stats password all_done_s)"
	printf "    %-34s %s ms   (target < 100 ms: %s)\n" "PATCH round trip" "$(stats password api_ms)" "$(verdict "$(median password api_ms)" 100)"
	printf "    %-34s %s (notify_window 100)\n" "peak told and not fetched" "$(stats password peak_told)"
	printf "    %-34s %s\n" "peak fetching at once" "$(stats password peak_fetching)"
	printf "    %-34s %s ms (first %s ms); %s/s\n" "last NOTIFY received" "$(stats password last_notify_ms)" "$(stats password first_notify_ms)" "$(stats password notify_rate)"
	echo "    retransmissions $(stats password retransmits); reports $(stats password reported) of $BULK_PHONES"
	echo "  b) the label of the BLF key on all phones (PATCH /keys/{id}) -> all fetched (a phone applies line keys without a report)"
	printf "    %-34s %s ms\n" "all fetched (phones' clock)" "$(stats key done_ms)"
	printf "    %-34s %s s\n" "all fetched, seen by the API" "$(stats key all_done_s)"
	printf "    %-34s %s ms   (target < 100 ms: %s)\n" "PATCH round trip" "$(stats key api_ms)" "$(verdict "$(median key api_ms)" 100)"
	printf "    %-34s %s\n" "peak told and not fetched" "$(stats key peak_told)"
	printf "    %-34s %s\n" "peak fetching at once" "$(stats key peak_fetching)"
	echo "  provbox CPU over all runs $(field cpu_s "$R") s; RSS idle ${IDLE_WAIT} s after: $(mib "$(field idle_rss_kb "$R")") MiB (anon $(mib "$(field idle_anon_kb "$R")"), file $(mib "$(field idle_file_kb "$R")")) (target < 60 MB: $(verdict "$(field idle_rss_kb "$R")" 58594)); peak (VmHWM) $(mib "$(field hwm_kb "$R")") MiB"
	echo "  idle: Go runtime holds $(mib "$(field go_sys_kb "$R")") MiB from the OS (heap in use $(mib "$(field heap_inuse_kb "$R")") MiB), $(field goroutines "$R") goroutines"
	echo "  states at the end: $FINAL_PHONES; phonesim errors: $SIM_ERRORS; phonesim peak RSS $(mib "$(sed -n 's/.*"peak_rss_kb":\([0-9]*\).*/\1/p' <<<"$SIM_SUMMARY")") MiB"
	fi
	echo
	echo "all runs:"
	sed 's/^/  /' "$OUT"
} >"$WORK/summary.txt"

cat "$WORK/summary.txt"
if [ "$RESULTS" != - ]; then
	mkdir -p "$(dirname "$RESULTS")"
	cp "$WORK/summary.txt" "$RESULTS"
	log "wrote $RESULTS"
fi

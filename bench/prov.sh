#!/usr/bin/env bash
# bench/prov.sh — benchmarks of SPEC §8: serving <mac>.cfg over HTTP (each
# request proving the phone's own secret) against nginx, over HTTPS against
# nginx with TLS on the same certificate and key, and over TFTP (the phones'
# claim-window fetches) against tftpd-hpa, on the same bytes, in the same
# run. nginx runs twice: serving the files statically (it ignores the
# secret; the target's baseline) and checking each phone's secret as
# provbox does (like for like). Besides requests a second, each server's
# CPU time per request is measured (/proc): the figure the load generator,
# which shares the CPUs, distorts least. Loopback (127.0.0.1) only. See
# bench/README.md.
#
#   bench/prov.sh                 # or: make bench
#   RUNS=3 HTTP_DUR=5s bench/prov.sh
#
# Knobs (environment): PHONES (1000), HTTP_C (32), HTTP_DUR (10s), RUNS (3),
# TFTP_N (1000), TFTP_C (50), FW_MIB (30), RESULTS (bench/results/prov-<date>.txt;
# "-" for stdout only), KEEP=1 keeps the work directory, BENCH_COMMIT names
# the code measured when not run from a git checkout, HTTP_ONLY=1 skips the
# refusal and TFTP steps.
#
# provbox runs with --log-level warn: at info it logs one line per fetch,
# which is the right default for an appliance but would measure the logger.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
PHONES=${PHONES:-1000}
HTTP_C=${HTTP_C:-32}
HTTP_DUR=${HTTP_DUR:-10s}
RUNS=${RUNS:-3}
TFTP_N=${TFTP_N:-1000}
TFTP_C=${TFTP_C:-50}
FW_MIB=${FW_MIB:-30}
RESULTS=${RESULTS:-bench/results/prov-$(date +%Y-%m-%d).txt}
ADMIN_PW=bench-admin-password
UA_TMPL='Yealink SIP-T46G 28.83.0.35 {mac}'

log() { echo "prov.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# --- peers -------------------------------------------------------------------
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v in.tftpd >/dev/null 2>&1 || [ -x /usr/sbin/in.tftpd ] || need+=(tftpd-hpa)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing ${need[*]}: sudo apt-get install --no-install-recommends ${need[*]}"
	log "installing ${need[*]}"
	apt-get update -qq
	# policy-rc.d keeps the packaged services from starting; we run both in
	# the foreground below.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin
id tftp >/dev/null 2>&1 || die "tftpd-hpa's user tftp is missing"
[ "$(id -u)" = 0 ] || die "run as root: in.tftpd -s chroots and drops to user tftp"

# --- cleanup: every process we start runs in its own session (setsid), and is
# stopped through its process group.
WORK=$(mktemp -d /tmp/provbench.XXXXXX)
chmod 755 "$WORK"
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

# start NAME CMD...: runs CMD in the background in a new session; logs to $WORK/NAME.log.
start() {
	local name=$1; shift
	setsid "$@" >"$WORK/$name.log" 2>&1 </dev/null &
	PIDS+=($!)
	eval "PID_$name=$!"
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

# wait_for NAME PID CHECK...: polls CHECK (5 s at most) while PID lives.
wait_for() {
	local name=$1 pid=$2; shift 2
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.log" >&2; die "$name exited"; }
		if "$@" >/dev/null 2>&1; then return; fi
		sleep 0.05
	done
	cat "$WORK/$name.log" >&2
	die "$name did not come up"
}

# --- build ---------------------------------------------------------------------
log "building bin/provbox and the load generators"
mkdir -p bin "$WORK/bin"
CGO_ENABLED=1 $GO build -trimpath -o bin/provbox ./cmd/provbox
$GO build -o "$WORK/bin/" ./bench/cmd/httpload ./bench/cmd/tftpload ./bench/cmd/refusals
PROVBOX=$PWD/bin/provbox
HTTPLOAD=$WORK/bin/httpload
TFTPLOAD=$WORK/bin/tftpload

# --- provbox with 1 extension and $PHONES phones ------------------------------------
DATA=$WORK/data
WWW=$WORK/www # what nginx and tftpd-hpa serve: the same bytes as provbox
mkdir -p "$DATA/firmware" "$WWW"
free_port tcp; HTTP_PORT=$PORT
free_port tcp; HTTPS_PORT=$PORT
free_port udp; TFTP_PORT=$PORT
free_port tcp; NGINX_PORT=$PORT
free_port tcp; NGINX_TLS_PORT=$PORT
free_port tcp; NGINX_AUTH_PORT=$PORT
free_port tcp; NGINX_AUTH_TLS_PORT=$PORT
free_port udp; TFTPD_PORT=$PORT

echo "$ADMIN_PW" | "$PROVBOX" user add admin --password-stdin --data "$DATA" >/dev/null
: >"$WORK/provbox.toml" # defaults; the refusals step turns the failure guard off (SIGHUP)
start provbox "$PROVBOX" serve --config "$WORK/provbox.toml" --data "$DATA" --http "127.0.0.1:$HTTP_PORT" --https "127.0.0.1:$HTTPS_PORT" --tftp "127.0.0.1:$TFTP_PORT" --sip off --log-level warn
# shellcheck disable=SC2154
PROVBOX_PID=$PID_provbox
BASE=http://127.0.0.1:$HTTP_PORT
wait_for provbox "$PROVBOX_PID" curl -sf --max-time 1 "$BASE/healthz"

API="$BASE/api/v1"
curl -sf --max-time 10 -u "admin:$ADMIN_PW" -d '{"number":"1001","name":"Alice","password":"x"}' "$API/extensions" >/dev/null

# MACs 001565000001…; each T46G gets the account key of 1001 on keys 1 and 2
# and a BLF key on 1002 on key 3.
MACS=$WORK/macs.txt
CSV=$WORK/phones.csv
awk -v n="$PHONES" 'BEGIN {
	print "mac,name,description,location,manufacturer,model,position,key_type,key_value,key_label"
	for (i = 1; i <= n; i++) {
		mac = sprintf("001565%06x", i)
		print mac > "'"$MACS"'"
		printf "%s,Phone %d,bench,,Yealink,T46G,1,account,1001,\n", mac, i
		printf "%s,,,,,,2,account,1001,\n", mac
		printf "%s,,,,,,3,blf,1002,Bob\n", mac
	}
}' >"$CSV"
# Through the API rather than `provbox phones import`: the CLI import would
# compute config versions without serve's settings until the next restart
# (README, known limit); the API import has no such gap and is as fast.
curl -sf --max-time 60 -u "admin:$ADMIN_PW" -H 'Content-Type: text/csv' --data-binary "@$CSV" "$API/phones.csv" >"$WORK/import.json" ||
	die "import failed"
log "imported: $(cat "$WORK/import.json")"

# --- the same bytes for nginx and tftpd-hpa ------------------------------------
# One fetch of each file over HTTP without a secret: each phone's claim-window
# fetch, as at its first boot (provbox records it). Then every phone's own
# secret, which every later request proves, and a spot check that `provbox
# render` gives the same bytes.
"$HTTPLOAD" -base "$BASE/prov/" -list "$MACS" -suffix .cfg -ua "$UA_TMPL" -export "$WWW" >&2
SECRETS=$WORK/secrets.txt
sed "s|.*|url = \"$API/phones/&/secret\"|" "$MACS" >"$WORK/secret-urls.txt"
sed "s|.*|url = \"$API/phones/&/claim\"|" "$MACS" >"$WORK/claim-urls.txt"
curl -sf --max-time 120 -u "admin:$ADMIN_PW" -w '\n' -K "$WORK/secret-urls.txt" |
	sed -n 's/.*"username":"\([0-9a-f]*\)","password":"\([^"]*\)".*/\1 \2/p' >"$SECRETS"
[ "$(wc -l <"$SECRETS")" = "$PHONES" ] || die "got $(wc -l <"$SECRETS") of $PHONES phones' secrets"
curl -sf --max-time 10 -o "$WORK/ca.crt" "$BASE/prov/ca.crt" || die "no /prov/ca.crt"
# The certificate and key provbox's own CA issued it, for nginx too.
cp "$DATA/tls/server.crt" "$DATA/tls/server.key" "$WORK/"
# A wrong secret is refused (the benchmark measures the checked path).
[ "$(curl -s -o /dev/null -w '%{http_code}' -u "$(head -1 "$MACS"):wrong" "$BASE/prov/$(head -1 "$MACS").cfg")" = 401 ] ||
	die "a wrong secret was not refused"
for mac in $(sed -n '1p;500p;$p' "$MACS"); do
	"$PROVBOX" render "$mac" --data "$DATA" >"$WORK/render.cfg"
	cmp -s "$WORK/render.cfg" "$WWW/$mac.cfg" || die "provbox render $mac differs from /prov/$mac.cfg"
done
head -c $((FW_MIB << 20)) /dev/urandom >"$DATA/firmware/fw-${FW_MIB}m.rom"
cp "$DATA/firmware/fw-${FW_MIB}m.rom" "$WWW/"
chmod 644 "$WWW"/*
chmod 755 "$WWW"
sync # no writeback of the files just made during the runs (provbox fsyncs per fetch)
CFG_BYTES=$(cat "$WWW"/*.cfg | wc -c)
CFG_AVG=$((CFG_BYTES / PHONES))
FIRST=$(head -1 "$MACS")

# --- nginx and tftpd-hpa in the foreground -----------------------------------------
mkdir -p "$WORK/nginx"
# nginx checking the phones' secrets as provbox does, as cheaply as nginx
# can: the Authorization header looked up in a hash of every phone's
# "Basic base64(mac:secret)", and the MAC it names compared with the file's
# (auth_basic would read and scan a password file on every request).
while read -r mac pw; do
	printf '"Basic %s" %s;\n' "$(printf '%s:%s' "$mac" "$pw" | base64 -w0)" "$mac"
done <"$SECRETS" >"$WORK/nginx/phones.map"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
	access_log off;
	default_type text/plain;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	client_body_temp_path $WORK/nginx/body;
	proxy_temp_path $WORK/nginx/proxy;
	fastcgi_temp_path $WORK/nginx/fastcgi;
	uwsgi_temp_path $WORK/nginx/uwsgi;
	scgi_temp_path $WORK/nginx/scgi;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		location /prov/ { alias $WWW/; }
	}
	server {
		listen 127.0.0.1:$NGINX_TLS_PORT ssl;
		ssl_certificate $WORK/server.crt;
		ssl_certificate_key $WORK/server.key;
		ssl_session_cache shared:SSL:10m;
		location /prov/ { alias $WWW/; }
	}
	map_hash_bucket_size 128;
	map_hash_max_size 8192;
	map \$http_authorization \$phone { default ""; include $WORK/nginx/phones.map; }
	map \$uri \$file_mac { default ""; "~^/prov/(?<m>[0-9a-f]{12})\\.cfg\$" \$m; }
	server {
		listen 127.0.0.1:$NGINX_AUTH_PORT;
		listen 127.0.0.1:$NGINX_AUTH_TLS_PORT ssl;
		ssl_certificate $WORK/server.crt;
		ssl_certificate_key $WORK/server.key;
		ssl_session_cache shared:SSL:10m;
		if (\$file_mac = "") { return 404; }
		if (\$phone != \$file_mac) { return 401; }
		location /prov/ { alias $WWW/; }
	}
}
EOF
start nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e stderr
wait_for nginx "$PID_nginx" curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$NGINX_PORT/prov/$FIRST.cfg"
cmp -s <(curl -sf --max-time 2 "http://127.0.0.1:$NGINX_PORT/prov/$FIRST.cfg") "$WWW/$FIRST.cfg" || die "nginx serves other bytes"
cmp -s <(curl -sf --max-time 2 --cacert "$WORK/ca.crt" "https://127.0.0.1:$NGINX_TLS_PORT/prov/$FIRST.cfg") "$WWW/$FIRST.cfg" || die "nginx TLS serves other bytes"
FIRST_PW=$(sed -n "s/^$FIRST //p" "$SECRETS")
cmp -s <(curl -sf --max-time 2 -u "$FIRST:$FIRST_PW" "http://127.0.0.1:$NGINX_AUTH_PORT/prov/$FIRST.cfg") "$WWW/$FIRST.cfg" || die "nginx with secrets serves other bytes"
[ "$(curl -s -o /dev/null -w '%{http_code}' -u "$FIRST:wrong" "http://127.0.0.1:$NGINX_AUTH_PORT/prov/$FIRST.cfg")" = 401 ] ||
	die "nginx with secrets did not refuse a wrong secret"
[ "$(curl -s -o /dev/null -w '%{http_code}' -u "$FIRST:$FIRST_PW" "http://127.0.0.1:$NGINX_AUTH_PORT/prov/$(sed -n 2p "$MACS").cfg")" = 401 ] ||
	die "nginx with secrets opened another phone's file"

start tftpd in.tftpd -L -s -B 1468 -a "127.0.0.1:$TFTPD_PORT" -u tftp "$WWW"
wait_for tftpd "$PID_tftpd" sh -c "ss -Huln 'sport = :$TFTPD_PORT' | grep -q ."

# --- runs ------------------------------------------------------------------------------
OUT=$WORK/out.txt
: >"$OUT"
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# cpu_ticks PID...: the CPU time (user + system, clock ticks) the processes
# have used.
cpu_ticks() {
	local p t=0 u s
	for p in "$@"; do
		read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat")
		t=$((t + u + s))
	done
	echo "$t"
}
NGINX_WORKERS=$(pgrep -P "$PID_nginx" | tr '\n' ' ')
http_run() { # label base pids...: every request carries the phone's secret (static nginx ignores it)
	local label=$1 base=$2 line t0 t1
	shift 2
	t0=$(cpu_ticks "$@")
	line=$(timeout 60 "$HTTPLOAD" -label "$label" -base "$base" -list "$MACS" -suffix .cfg -ua "$UA_TMPL" -secrets "$SECRETS" \
		-cacert "$WORK/ca.crt" -expect "$WWW" -c "$HTTP_C" -d "$HTTP_DUR")
	t1=$(cpu_ticks "$@")
	# The server's CPU time per answered request, in microseconds.
	echo "$line cpu_us=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$(field ok "$line")" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')" |
		tee -a "$OUT" >&2
}
reopen_claims() { # each phone may fetch once more without its secret: TFTP's only way
	curl -sf --max-time 120 -X POST -u "admin:$ADMIN_PW" -K "$WORK/claim-urls.txt" >/dev/null || die "reopening claims failed"
}
tftp_run() { # label port blksize
	timeout 90 "$TFTPLOAD" -label "$1" -addr "127.0.0.1:$2" -list "$MACS" -suffix .cfg -expect "$WWW" \
		-n "$TFTP_N" -c "$TFTP_C" -blksize "$3" -limit 60s | tee -a "$OUT" >&2
}
fw_run() { # label port
	timeout 90 "$TFTPLOAD" -label "$1" -addr "127.0.0.1:$2" -file "fw-${FW_MIB}m.rom" -expect "$WWW" -sha256 \
		-n 1 -c 1 -blksize 1468 -limit 60s | tee -a "$OUT" >&2
}

log "HTTP and HTTPS: $HTTP_C workers, $HTTP_DUR per run, $RUNS runs per server, alternating"
# shellcheck disable=SC2086 # NGINX_WORKERS is a list of PIDs
for r in $(seq "$RUNS"); do
	http_run "provbox-http#$r" "$BASE/prov/" "$PROVBOX_PID"
	http_run "nginx#$r" "http://127.0.0.1:$NGINX_PORT/prov/" $NGINX_WORKERS
	http_run "nginx-auth#$r" "http://127.0.0.1:$NGINX_AUTH_PORT/prov/" $NGINX_WORKERS
	http_run "provbox-https#$r" "https://127.0.0.1:$HTTPS_PORT/prov/" "$PROVBOX_PID"
	http_run "nginx-https#$r" "https://127.0.0.1:$NGINX_TLS_PORT/prov/" $NGINX_WORKERS
	http_run "nginx-auth-https#$r" "https://127.0.0.1:$NGINX_AUTH_TLS_PORT/prov/" $NGINX_WORKERS
done
if [ "${HTTP_ONLY:-0}" != 1 ]; then
	log "refusals: known and unknown MAC without a secret, alternating (failure guard off: with it on, an address is refused with 429 past 20 refusals a minute)"
	printf '[provisioning]\nmiss_limit = 0\n' >"$WORK/provbox.toml"
	kill -HUP "$PROVBOX_PID"
	sleep 0.5
	for r in $(seq "$RUNS"); do
		timeout 120 "$WORK/bin/refusals" -known "$BASE/prov/$FIRST.cfg" -unknown "$BASE/prov/001565ffffff.cfg" -n 4000 |
			sed "s/^refusals: /refusals: label=refusals#$r /" | tee -a "$OUT" >&2
	done
	log "TFTP: $TFTP_N claim-window fetches, $TFTP_C at a time, $RUNS runs per server and blksize"
	[ "$TFTP_N" -le "$PHONES" ] || die "TFTP_N ($TFTP_N) > PHONES ($PHONES): each phone has one claim-window fetch"
	for bs in 0 1468; do
		for r in $(seq "$RUNS"); do
			reopen_claims
			tftp_run "provbox-tftp-bs$bs#$r" "$TFTP_PORT" "$bs"
			tftp_run "tftpd-hpa-bs$bs#$r" "$TFTPD_PORT" "$bs"
		done
	done
	log "TFTP: ${FW_MIB} MiB firmware, blksize 1468"
	for r in $(seq "$RUNS"); do
		fw_run "provbox-fw#$r" "$TFTP_PORT"
		fw_run "tftpd-hpa-fw#$r" "$TFTPD_PORT"
	done
fi
RSS_KB=$(awk '/^VmHWM/ {print $2}' "/proc/$PROVBOX_PID/status")
grep -qv '^$' "$WORK/provbox.log" && { log "provbox logged warnings:"; head -20 "$WORK/provbox.log" >&2; }

# runs(label-prefix, field): the field of each run, in run order.
runs() {
	local r
	for r in $(seq "$RUNS"); do grep "label=$1#$r " "$OUT" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p" | head -1; done
}
median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
spread() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END { if (NR) printf "%s-%s", lo, hi; else print "n/a" }'; }
# ratios(a-prefix, b-prefix, field): a/b of each run (runs alternate, so
# run r of a and of b saw the same machine).
ratios() { paste <(runs "$1" "$3") <(runs "$2" "$3") | awk '$2 > 0 { printf "%.2f\n", $1 / $2 }'; }
# line(label-prefix, field): the output line of the median run.
line() {
	local v; v=$(runs "$1" "$2" | median)
	grep "label=$1#" "$OUT" | grep " $2=$v " | head -1
}
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r + 0 >= t) ? "PASS" : "MISS" }'; }
errsum() { grep "label=$1#" "$OUT" | sed -n 's/.* errors=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}'; }
# compare(title, a-prefix, a-name, b-prefix, b-name, field, unit, target)
compare() {
	local R PL BL
	R=$(ratios "$2" "$4" "$6")
	PL=$(line "$2" "$6"); BL=$(line "$4" "$6")
	echo "$1; median of $RUNS runs (spread min-max)"
	printf "  %-10s %9s %s (%s)  p50 %-10s p99 %-10s errors %s\n" "$3" "$(runs "$2" "$6" | median)" "$7" "$(runs "$2" "$6" | spread)" "$(field p50 "$PL")" "$(field p99 "$PL")" "$(errsum "$2")"
	printf "  %-10s %9s %s (%s)  p50 %-10s p99 %-10s errors %s\n" "$5" "$(runs "$4" "$6" | median)" "$7" "$(runs "$4" "$6" | spread)" "$(field p50 "$BL")" "$(field p99 "$BL")" "$(errsum "$4")"
	echo "  ratio $3/$5 per run: $(echo "$R" | tr '\n' ' ')-> median $(echo "$R" | median) (spread $(echo "$R" | spread)); target >= $8: $(verdict "$(echo "$R" | median)" "$8")"
	echo
}

# alike(title, a-prefix, b-prefix): the per-run req/s ratios a/b, after a
# compare of a.
alike() {
	local R
	R=$(ratios "$2" "$3" rps)
	echo "  $1: $3 $(runs "$3" rps | median) req/s ($(runs "$3" rps | spread)); ratio per run: $(echo "$R" | tr '\n' ' ')-> median $(echo "$R" | median) (spread $(echo "$R" | spread))"
	echo
}

{
	echo "provbox bench/prov.sh — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "commit ${BENCH_COMMIT:-$(git describe --always --dirty 2>/dev/null || echo unknown)}; $($GO version | cut -d' ' -f3-4); $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); kernel $(uname -r)"
	echo "peers: $(nginx -v 2>&1 | sed 's/^nginx version: //'), tftpd-hpa $(dpkg-query -W -f='${Version}' tftpd-hpa 2>/dev/null || echo '?')"
	echo "load generators share the CPUs with the servers: compare only within one run."
	echo "data: $PHONES T46G phones, 1 extension (keys 1-2 account, key 3 BLF); <mac>.cfg avg $CFG_AVG bytes; provbox --log-level warn"
	echo
	compare "HTTP GET /prov/<mac>.cfg with the phone's secret (Basic), $HTTP_C keep-alive workers, $HTTP_DUR per run, round-robin over $PHONES files" \
		provbox-http provbox nginx nginx rps req/s 1.0
	alike "nginx checking each phone's secret too (like for like)" provbox-http nginx-auth
	compare "HTTPS GET /prov/<mac>.cfg with the phone's secret, same certificate and key (ECDSA P-256 from provbox's CA), $HTTP_C keep-alive workers" \
		provbox-https provbox nginx-https nginx rps req/s 1.0
	alike "nginx checking each phone's secret too (like for like)" provbox-https nginx-auth-https
	echo "Server CPU time per request (user + system, from /proc; the least distorted by the load generator), median of $RUNS runs"
	for l in provbox-http nginx nginx-auth provbox-https nginx-https nginx-auth-https; do
		printf "  %-17s %6s µs (%s)\n" "$l" "$(runs "$l" cpu_us | median)" "$(runs "$l" cpu_us | spread)"
	done
	echo
	if [ "${HTTP_ONLY:-0}" != 1 ]; then
		echo "Refusals without a secret, known vs unknown MAC (401, same bytes), 4000 each alternating on one connection"
		echo "  ratio unknown/known of the p50 per run: $(runs refusals ratio_p50 | tr '\n' ' ')-> median $(runs refusals ratio_p50 | median) (1.0 = no timing difference)"
		echo
		for bs in 0 1468; do
			name="blksize 512 (no option)"
			[ "$bs" = 0 ] || name="blksize $bs"
			compare "TFTP $TFTP_N x <mac>.cfg (provbox: each a claim-window fetch, reopened before the run), $TFTP_C at a time, $name" \
				"provbox-tftp-bs$bs" provbox "tftpd-hpa-bs$bs" tftpd-hpa fetches_per_s fetches/s 1.0
		done
		PF=$(runs provbox-fw secs | median); TF=$(runs tftpd-hpa-fw secs | median)
		echo "TFTP ${FW_MIB} MiB firmware, blksize 1468, sha256 checked; median of $RUNS runs"
		printf "  %-10s %6ss  (%s MB/s)\n" provbox "$PF" "$(awk -v s="$PF" -v m="$FW_MIB" 'BEGIN { printf "%.1f", m * 1048576 / s / 1e6 }')"
		printf "  %-10s %6ss  (%s MB/s)\n" tftpd-hpa "$TF" "$(awk -v s="$TF" -v m="$FW_MIB" 'BEGIN { printf "%.1f", m * 1048576 / s / 1e6 }')"
		echo
	fi
	echo "provbox peak RSS over the whole run: $((RSS_KB / 1024)) MiB"
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

#!/usr/bin/env bash
# bench/dhcp.sh — issue-6 benchmark (SPEC §8): DHCP 4-way exchanges per
# second with no drops, measured by perfdhcp against provbox, dnsmasq and
# kea-dhcp4 (memfile) on the same network-namespace pair, in one run.
# Traffic stays on a veth pair between two namespaces this script makes
# (10.99.0.1 server, 10.99.0.2 perfdhcp acting as a relay) and deletes.
#
#   bench/dhcp.sh                        # needs root
#   RATES="1000 2000 4000" SECS=5 bench/dhcp.sh
#
# Knobs (environment): RATES (offered exchanges/s, ascending), SECS (10 s per
# step), SWEEPS ("repeat:10000 new:1000000": name:simulated MACs — 10000
# MACs make most exchanges repeat clients, as in shared/reference's
# baseline; a million make nearly every one a new lease), SERVERS
# ("provbox dnsmasq kea"),
# RESULTS (bench/results/dhcp-<date>.txt; "-" for stdout only), KEEP=1 keeps
# the work directory, PROVBOX_DHCP=testserver forces dhcpopt's test server
# instead of `provbox serve --dhcp` (used automatically while serve does not
# wire DHCP).
#
# Every step starts a fresh server with an empty lease store, then runs one
# bounded perfdhcp (-p SECS, -W 1 s for late replies, wrapped in timeout).
# A step is clean when both exchanges (DISCOVER-OFFER, REQUEST-ACK) lost
# nothing and no lease was rejected or handed out twice. A server's sweep
# stops after two lossy steps in a row. The servers take turns at each rate.
#
# Fairness: provbox runs with its leases durable in SQLite (WAL,
# synchronous=FULL: an ACK leaves only after its lease is fsynced; group
# commit; a client asking again within the first quarter of its lease gets
# the stored lease back without a write, as ISC dhcpd's default
# dhcp-cache-threshold — which the "new" sweep rules out) and
# dhcp.conflict_check = false; dnsmasq with its lease file (its
# default, rewritten on change) and --no-ping (its ICMP check would pace
# it); Kea single-threaded with memfile persistence (an append-only CSV,
# not fsynced per lease). None logs per packet.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
RATES=${RATES:-"100 200 500 1000 2000 3000 4000 5000 6000 8000"}
SECS=${SECS:-10}
SWEEPS=${SWEEPS:-"repeat:10000 new:1000000"}
SERVERS=${SERVERS:-"provbox dnsmasq kea"}
RESULTS=${RESULTS:-bench/results/dhcp-$(date +%Y-%m-%d).txt}
URL=http://10.99.0.1:8080/prov/

log() { echo "dhcp.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, port 67, raw sockets)"
export PATH=$PATH:/usr/sbin:/sbin
need=()
command -v perfdhcp >/dev/null || need+=(kea-admin)
command -v kea-dhcp4 >/dev/null || need+=(kea-dhcp4-server)
command -v dnsmasq >/dev/null || need+=(dnsmasq)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	apt-get update -qq
	# policy-rc.d keeps the packaged services from starting; we run them in
	# the foreground below.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

ID=$$
NS_SRV=pbdS$ID NS_CLI=pbdC$ID
V_SRV=pbdv$ID V_CLI=pbdw$ID
WORK=$(mktemp -d /tmp/dhcpbench.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	ip netns del "$NS_SRV" 2>/dev/null || true
	ip netns del "$NS_CLI" 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the namespace pair --------------------------------------------------------
ip netns add "$NS_SRV"
ip netns add "$NS_CLI"
ip link add "$V_SRV" type veth peer name "$V_CLI"
ip link set "$V_SRV" netns "$NS_SRV"
ip link set "$V_CLI" netns "$NS_CLI"
ip -n "$NS_SRV" addr add 10.99.0.1/24 dev "$V_SRV"
ip -n "$NS_CLI" addr add 10.99.0.2/24 dev "$V_CLI"
for ns in "$NS_SRV:$V_SRV" "$NS_CLI:$V_CLI"; do
	ip -n "${ns%%:*}" link set lo up
	ip -n "${ns%%:*}" link set "${ns#*:}" up
done

# --- provbox -------------------------------------------------------------------
log "building provbox and dhcpopt's test server"
"$GO" build -o "$WORK/provbox" ./cmd/provbox
"$GO" build -o "$WORK/testserver" ./dhcpopt/internal/testserver
cat >"$WORK/provbox.toml" <<EOF
[http]
public_url = "$URL"
[dhcp]
range_start = "10.99.16.1"
range_end = "10.99.255.254"
netmask = "255.255.0.0"
router = "10.99.0.1"
dns = ["10.99.0.1"]
lease_time = "1h"
allow_other_servers = true
conflict_check = false
EOF
cat >"$WORK/kea.json" <<EOF
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "$V_SRV" ], "dhcp-socket-type": "raw" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$WORK/kea-leases4.csv", "lfc-interval": 0 },
  "valid-lifetime": 3600,
  "subnet4": [ { "id": 1, "subnet": "10.99.0.0/16",
    "pools": [ { "pool": "10.99.16.1 - 10.99.255.254" } ],
    "option-data": [ { "name": "routers", "data": "10.99.0.1" }, { "name": "domain-name-servers", "data": "10.99.0.1" },
                     { "name": "tftp-server-name", "data": "$URL" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "$WORK/kea.log" } ], "severity": "WARN" } ]
} }
EOF

# Does `provbox serve` wire DHCP yet? Otherwise measure the same dhcpopt
# code through its test server.
PROVBOX_DHCP=${PROVBOX_DHCP:-}
if [ -z "$PROVBOX_DHCP" ]; then
	mkdir -p "$WORK/probe-data"
	ip netns exec "$NS_SRV" timeout 8 "$WORK/provbox" serve --config "$WORK/provbox.toml" --data "$WORK/probe-data" \
		--http 10.99.0.1:8080 --tftp off --sip off --dhcp "$V_SRV" >"$WORK/probe.log" 2>&1 &
	probe=$!
	PROVBOX_DHCP=testserver
	for _ in $(seq 80); do
		if grep -q '"dhcp serving"\|dhcp serving' "$WORK/probe.log"; then PROVBOX_DHCP=serve; break; fi
		grep -q 'provbox ready' "$WORK/probe.log" && break
		kill -0 $probe 2>/dev/null || break
		sleep 0.1
	done
	kill $probe 2>/dev/null || true
	wait $probe 2>/dev/null || true
fi
log "provbox DHCP through: $PROVBOX_DHCP"

# start_server NAME STEP: a fresh server in the server namespace.
start_server() {
	local name=$1 step=$2 dir="$WORK/$1-$2"
	mkdir -p "$dir"
	case $name in
	provbox)
		if [ "$PROVBOX_DHCP" = serve ]; then
			setsid ip netns exec "$NS_SRV" "$WORK/provbox" serve --config "$WORK/provbox.toml" --data "$dir" \
				--http 10.99.0.1:8080 --tftp off --sip off --dhcp "$V_SRV" --log-level info >"$dir/log" 2>&1 </dev/null &
		else
			setsid ip netns exec "$NS_SRV" "$WORK/testserver" -iface "$V_SRV" -db "$dir/provbox.db" \
				-start 10.99.16.1 -end 10.99.255.254 -mask 255.255.0.0 -router 10.99.0.1 -dns 10.99.0.1 \
				-lease 1h -url "$URL" -allow-other -no-conflict-check -log-level info >"$dir/log" 2>&1 </dev/null &
		fi
		;;
	dnsmasq)
		setsid ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
			--interface="$V_SRV" --bind-interfaces --dhcp-authoritative --no-ping --dhcp-lease-max=100000 \
			--dhcp-range=10.99.16.1,10.99.255.254,255.255.0.0,1h --dhcp-option=3,10.99.0.1 --dhcp-option=6,10.99.0.1 \
			--dhcp-option=66,"$URL" --dhcp-leasefile="$dir/dnsmasq.leases" --pid-file="$dir/dnsmasq.pid" \
			--user=root --log-facility="$dir/log" >"$dir/out" 2>&1 </dev/null &
		;;
	kea)
		rm -f "$WORK/kea-leases4.csv"*
		KEA_PIDFILE_DIR=$dir KEA_LOCKFILE_DIR=$dir setsid ip netns exec "$NS_SRV" kea-dhcp4 -c "$WORK/kea.json" \
			>"$dir/log" 2>&1 </dev/null &
		;;
	esac
	PIDS+=($!)
	SERVER_PID=$!
	# Ready: the server holds a UDP socket on port 67 (Kea a raw one too).
	for _ in $(seq 100); do
		if ip netns exec "$NS_SRV" ss -Hanp -u 2>/dev/null | grep ':67 ' | grep -q "pid=$SERVER_PID,"; then
			sleep 0.5
			return 0
		fi
		kill -0 $SERVER_PID 2>/dev/null || { cat "$dir/log" >&2; die "$name did not start"; }
		sleep 0.1
	done
	cat "$dir/log" >&2
	die "$name is not listening on port 67"
}

stop_server() {
	kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
}

# run_step NAME STEP RATE CLIENTS: prints "rate do_drops ra_drops bad do_avg do_max ra_avg ra_max achieved rc".
run_step() {
	local name=$1 rate=$3 clients=$4 out="$WORK/$1-$2/perfdhcp.txt" rc=0
	ip netns exec "$NS_CLI" timeout $((SECS + 20)) perfdhcp -4 -r "$rate" -R "$clients" -p "$SECS" -W 1000000 -d 1 \
		-l 10.99.0.2 10.99.0.1 >"$out" 2>&1 || rc=$?
	awk -v rate="$rate" -v rc="$rc" '
		/^Rate:/ { achieved = $2 }
		/Statistics for: DISCOVER-OFFER/ { s = "do" }
		/Statistics for: REQUEST-ACK/ { s = "ra" }
		/^drops:/ { drops[s] = $2 }
		/^rejected leases:/ { bad += $3 }
		/^non unique addresses:/ { bad += $4 }
		/^avg delay:/ { avg[s] = $3 }
		/^max delay:/ { mx[s] = $3 }
		END {
			if (drops["do"] == "") drops["do"] = "?"
			if (drops["ra"] == "") drops["ra"] = "?"
			printf "%s %s %s %d %s %s %s %s %s %s\n", rate, drops["do"], drops["ra"], bad, avg["do"], mx["do"], avg["ra"], mx["ra"], achieved, rc
		}' "$out"
}

declare -A BEST LAT
{
	echo "# bench/dhcp.sh — $(date -u +%Y-%m-%dT%H:%M:%SZ) — commit ${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
	echo "# $(nproc) cores; perfdhcp $(perfdhcp -v 2>&1 | head -1); dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}'); kea-dhcp4 $(kea-dhcp4 -v)"
	echo "# provbox DHCP through: $PROVBOX_DHCP; $SECS s per step; perfdhcp as relay (giaddr 10.99.0.2), -W 1 s"
	echo "# columns: sweep server rate(offered/s) D-O_drops R-A_drops rejected+duplicates D-O_avg_ms D-O_max_ms R-A_avg_ms R-A_max_ms reported_rate(diluted by -W) rc"
} >"$WORK/results.txt"

# The servers take turns at each rate (provbox, dnsmasq, kea at 100/s,
# then at 200/s, …), so a burst of load from elsewhere on a shared machine
# falls on all of them alike rather than on one server's whole sweep.
declare -A LOSSY
for sweep in $SWEEPS; do
	mode=${sweep%%:*} clients=${sweep#*:}
	for srv in $SERVERS; do BEST[$mode.$srv]=0 LOSSY[$srv]=0; done
	for rate in $RATES; do
		for srv in $SERVERS; do
			[ "${LOSSY[$srv]}" -ge 2 ] && continue
			start_server "$srv" "$mode-$rate"
			line=$(run_step "$srv" "$mode-$rate" "$rate" "$clients")
			stop_server
			echo "$mode $srv $line" | tee -a "$WORK/results.txt" >&2
			read -r r dod rad bad doavg domax raavg ramax achieved rc <<<"$line"
			if [ "$dod" = 0 ] && [ "$rad" = 0 ] && [ "$bad" = 0 ]; then
				BEST[$mode.$srv]=$r
				LAT[$mode.$srv]="D-O avg/max $doavg/$domax ms, R-A avg/max $raavg/$ramax ms"
				LOSSY[$srv]=0
			else
				LOSSY[$srv]=$((LOSSY[$srv] + 1))
			fi
		done
	done
done

for sweep in $SWEEPS; do
	mode=${sweep%%:*} clients=${sweep#*:}
	{
		echo
		echo "# $mode ($clients simulated MACs): highest rate with no drops (4-way exchanges/s offered), latency at that rate"
		for srv in $SERVERS; do
			printf "%-8s %6s/s  %s\n" "$srv" "${BEST[$mode.$srv]}" "${LAT[$mode.$srv]:-}"
		done
		base=0 basename=""
		for srv in $SERVERS; do
			[ "$srv" = provbox ] && continue
			if [ "${BEST[$mode.$srv]}" -gt "$base" ]; then base=${BEST[$mode.$srv]}; basename=$srv; fi
		done
		if [ -n "${BEST[$mode.provbox]:-}" ] && [ "$base" -gt 0 ]; then
			awk -v p="${BEST[$mode.provbox]}" -v b="$base" -v n="$basename" 'BEGIN { printf "ratio provbox / faster baseline (%s): %.2f (target >= 1.0)\n", n, p / b }'
		fi
	} >>"$WORK/results.txt"
done

cat "$WORK/results.txt"
if [ "$RESULTS" != - ]; then
	mkdir -p "$(dirname "$RESULTS")"
	cp "$WORK/results.txt" "$RESULTS"
	log "results in $RESULTS"
fi

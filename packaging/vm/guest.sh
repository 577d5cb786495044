#!/bin/bash
# provbox VM test, the guest side (packaging/vm/run.sh copies it into the
# image as /usr/local/sbin/provbox-vmtest and runs it once per boot from
# provbox-vmtest.service, after multi-user.target).
#
# Boot 1 installs /root/provbox.deb under the running systemd and checks the
# unit: it starts (READY=1), systemd-analyze security, DynamicUser owns the
# state directory, the capabilities, ports 67 (DHCP: a real lease to a
# client in a network namespace) and 69 (TFTP) bound without root, reload,
# the watchdog restarting a stopped daemon. It creates an admin (CLI) and a
# phone (API), then reboots. Boot 2 checks the service came back at boot
# with the same data, then purges the package and checks what is left.
#
# Results go to the second serial port (/dev/ttyS1) as TAP: "ok N - name #
# detail" or "not ok N - name # detail", comment lines "# ...", the plan
# "1..N" and "# vmtest done" at the end; run.sh reads them from a file.
set -u

state=/var/lib/provbox-vmtest
mkdir -p "$state"
stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3>>/dev/ttyS1

pw='vm-test-admin-password'
mac=001565aabbcc
api=http://127.0.0.1:8080/api/v1
# The highest systemd-analyze security exposure accepted: the limit
# systemd/unit_test.go holds the unit file to (maxExposure), now measured
# on the loaded unit under a running systemd. The README states 1.8.
max_exposure=2.5
# How long the watchdog check waits for the restart: WatchdogSec (30 s),
# then SIGABRT, which a stopped process does not take, so SIGKILL after
# TimeoutAbortSec (= TimeoutStopSec, 30 s), then RestartSec (5 s), plus
# the start.
watchdog_wait=150

tap() { # tap ok|not NAME [DETAIL]
	local n line
	n=$(($(cat "$state/n" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$state/n"
	line="$n - $2"
	[ "$1" = ok ] && line="ok $line" || line="not ok $line"
	[ -n "${3:-}" ] && line="$line # $3"
	echo "$line" >&3
	echo "$line"
}
pass() { tap ok "$@"; }
fail() { tap not "$@"; }
# check NAME DETAIL COMMAND...: pass when COMMAND succeeds.
check() {
	local name=$1 detail=$2
	shift 2
	if "$@"; then pass "$name" "$detail"; else fail "$name" "$detail"; fi
}
note() { sed 's/^/# /' >&3; }
prop() { systemctl show -P "$1" provbox.service; }
props() { systemctl show -p ActiveState,SubState,NRestarts,MainPID,Result provbox.service | tr '\n' ' '; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

# wait_for SECONDS COMMAND...: true once COMMAND succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 1
	done
}
running() { [ "$(prop ActiveState)" = active ] && [ "$(prop SubState)" = running ]; }

# The state directory belongs to the service's dynamic user: the uid of
# its main process, from systemd's dynamic range, named provbox by
# nss-systemd, and no other.
check_dynamic_user() {
	local pid uids uid owner dbowner mode link name
	pid=$(prop MainPID)
	uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
	uid=${uids%% *}
	owner=$(stat -c %u /var/lib/private/provbox)
	dbowner=$(stat -c %u /var/lib/private/provbox/provbox.db)
	mode=$(stat -c %a /var/lib/private/provbox)
	link=$(readlink /var/lib/provbox)
	name=$(getent passwd "$uid" | cut -d: -f1)
	local detail="uid $uid ($name); /var/lib/private/provbox owner $owner mode $mode, provbox.db owner $dbowner; /var/lib/provbox -> $link"
	if [ "$uids" = "$uid $uid $uid $uid" ] && ((uid >= 61184 && uid <= 65519)) && [ "$owner" = "$uid" ] &&
		[ "$dbowner" = "$uid" ] && [ "$mode" = 700 ] && [ "$link" = private/provbox ] && [ "$name" = provbox ]; then
		pass "DynamicUser owns the state directory$1" "$detail"
	else
		fail "DynamicUser owns the state directory$1" "$detail"
	fi
}

phone_name() {
	curl -fsS -u "admin:$pw" "$api/phones/$mac" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p'
}

phase1() {
	echo "# boot 1: $(uname -r), $(systemctl --version | head -1), $(. /etc/os-release && echo "$PRETTY_NAME")" >&3
	check "systemd is PID 1" "$(cat /proc/1/comm)" [ "$(cat /proc/1/comm)" = systemd ]

	local out rc
	out=$(dpkg -i /root/provbox.deb 2>&1)
	rc=$?
	printf '%s\n' "$out" | note
	check "dpkg -i under a running systemd" "exit $rc; $(dpkg-query -W -f='${Package} ${Version} ${Status}' provbox)" [ $rc = 0 ]
	local en act
	en=$(systemctl is-enabled provbox.service)
	act=$(systemctl is-active provbox.service)
	check "installed enabled, not started" "is-enabled=$en is-active=$act" eval '[ "$en" = enabled ] && [ "$act" = inactive ]'

	# DHCP on pbdhcp (10.99.0.1/24, set by systemd-networkd); its veth peer
	# goes into a namespace of its own, where the client asks.
	sed -i '/^\[dhcp\]$/a interface = "pbdhcp"\nrange_start = "10.99.0.100"\nrange_end = "10.99.0.200"\nnetmask = "255.255.255.0"' /etc/provbox/provbox.toml
	ip netns add pbc && ip link set pbclient netns pbc && ip -n pbc link set lo up && ip -n pbc link set pbclient up
	ip -br addr | note

	# An admin made by root before the first start: the database lands in
	# /var/lib/provbox owned by root; systemd hands it to the dynamic user.
	out=$(echo "$pw" | provbox user add admin --password-stdin 2>&1)
	rc=$?
	check "admin created with the CLI before the first start" "exit $rc: $out; $(stat -c '%U %n' /var/lib/provbox/provbox.db 2>&1)" [ $rc = 0 ]

	# Type=notify: systemctl start returns once provbox sent READY=1.
	local t0=$SECONDS
	out=$(systemctl start provbox.service 2>&1)
	rc=$?
	check "unit starts and reaches READY=1" "systemctl start exit $rc after $((SECONDS - t0))s $out; $(props); Type=$(prop Type); $(prop StatusText)" \
		eval '[ $rc = 0 ] && running && [ "$(prop NRestarts)" = 0 ] && [ "$(prop Type)" = notify ]'
	journalctl -b -u provbox.service --no-pager -o cat | note

	out=$(systemd-analyze security --no-pager provbox.service 2>&1)
	printf '%s\n' "$out" | note
	local level
	level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for provbox.service: \([0-9.]*\).*/\1/p')
	check "systemd-analyze security exposure <= $max_exposure" "exposure ${level:-none}: $(printf '%s\n' "$out" | grep -o 'Overall exposure.*')" \
		le "${level:-99}" "$max_exposure"

	check_dynamic_user ""

	local pid caps
	pid=$(prop MainPID)
	caps=$(awk '/^Cap(Inh|Prm|Eff|Bnd|Amb):|^NoNewPrivs:/ { printf "%s%s ", $1, $2 }' "/proc/$pid/status")
	# CAP_NET_BIND_SERVICE (10), CAP_NET_BROADCAST (11), CAP_NET_RAW (13);
	# ambient capabilities are inheritable too.
	check "runs without root, with only the unit's capabilities" "uid $(awk '/^Uid:/ { print $2 }' "/proc/$pid/status"): $caps" \
		[ "$caps" = "CapInh:0000000000002c00 CapPrm:0000000000002c00 CapEff:0000000000002c00 CapBnd:0000000000002c00 CapAmb:0000000000002c00 NoNewPrivs:1 " ]

	# ss -H: state, queues, local address ($4), peer, process.
	local port proto bound
	{ ss -Hlnup; ss -Hlntp; } | note
	for port in 67/udp 69/udp 5060/udp 8080/tcp 8443/tcp; do
		proto=${port#*/}
		bound=$(ss -Hln"${proto:0:1}"p | grep "pid=$pid," | awk -v p=":${port%/*}" 'substr($4, length($4) - length(p) + 1) == p { print $4 }' | tr '\n' ' ')
		check "port $port bound by the daemon" "${bound:-not bound}" [ -n "$bound" ]
	done

	out=$(ip netns exec pbc timeout 60 busybox udhcpc -i pbclient -f -q -n -t 5 -T 3 -s /bin/true 2>&1)
	printf '%s\n' "$out" | note
	local lease
	lease=$(printf '%s\n' "$out" | sed -n 's/.*lease of \(10\.99\.0\.[0-9]*\) obtained from 10\.99\.0\.1.*/\1/p')
	check "DHCP on port 67: a client in a namespace gets a lease" "${lease:-no lease}" [ -n "$lease" ]

	# TFTP serves the same CA certificate as HTTP /prov/ (open to all).
	local tftp http
	tftp=$(curl -sS --max-time 20 tftp://127.0.0.1/ca.crt 2>&1 | sha256sum | cut -c1-16)
	http=$(curl -sS --max-time 20 http://127.0.0.1:8080/prov/ca.crt 2>&1 | sha256sum | cut -c1-16)
	check "TFTP on port 69 serves ca.crt" "sha256 tftp $tftp, http $http" \
		eval '[ "$tftp" = "$http" ] && curl -sS tftp://127.0.0.1/ca.crt | grep -q "BEGIN CERTIFICATE"'

	out=$(curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/healthz 2>&1)
	check "HTTP /healthz" "$out" [ "$out" = 200 ]
	out=$(curl -sS -u "admin:$pw" -w ' %{http_code}' -H 'Content-Type: application/json' \
		-d '{"mac":"00-15-65-AA-BB-CC","model":"T46G","name":"VM test phone"}' "$api/phones" 2>&1 | tr -d '\n')
	check "phone created with the API" "$out" eval '[ "${out##* }" = 201 ]'

	# Reload: log_level is applied at once.
	local since
	pid=$(prop MainPID)
	since=$(date '+%Y-%m-%d %H:%M:%S')
	sleep 1
	sed -i 's/^# log_level = "info"$/log_level = "debug"/' /etc/provbox/provbox.toml
	out=$(systemctl reload provbox.service 2>&1)
	rc=$?
	reloaded() { journalctl -u provbox.service --since "$since" --no-pager -o cat | grep 'config reloaded'; }
	wait_for 20 reloaded >/dev/null
	check "systemctl reload applies log_level" "exit $rc $out; $(reloaded); MainPID $pid -> $(prop MainPID)" \
		eval 'reloaded | grep -q log_level && [ "$(prop MainPID)" = "$pid" ] && running'

	# Watchdog: a stopped daemon sends no WATCHDOG=1.
	local nr0 t1
	nr0=$(prop NRestarts)
	since=$(date '+%Y-%m-%d %H:%M:%S')
	t1=$SECONDS
	kill -STOP "$pid"
	restarted() { [ "$(prop NRestarts)" -gt "$nr0" ] && running && [ "$(prop MainPID)" != "$pid" ]; }
	wait_for "$watchdog_wait" restarted
	rc=$?
	local took=$((SECONDS - t1))
	check "watchdog restarts a stopped daemon" "after ${took}s: NRestarts $nr0 -> $(prop NRestarts), MainPID $pid -> $(prop MainPID); $(journalctl -u provbox.service --since "$since" --no-pager -o cat | grep -m1 -i 'watchdog')" \
		eval '[ $rc = 0 ] && journalctl -u provbox.service --since "$since" -o cat | grep -qi "watchdog timeout"'
	wait_for 20 eval '[ "$(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:8080/healthz)" = 200 ]'
	check "serves again after the watchdog restart" "phone name: $(phone_name)" [ "$(phone_name)" = "VM test phone" ]

	echo "# journal of provbox.service, boot 1:" >&3
	journalctl -b -u provbox.service --no-pager -o short-iso | note
	echo 2 >"$state/phase"
	sync
	echo "# rebooting" >&3
	systemctl reboot
}

phase2() {
	echo "# boot 2: $(uname -r)" >&3
	# After=multi-user.target: provbox's start job at boot is over.
	wait_for 60 running
	check "starts at boot (enabled)" "$(props); is-enabled=$(systemctl is-enabled provbox.service)" \
		eval 'running && [ "$(prop NRestarts)" = 0 ]'
	wait_for 20 eval '[ "$(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:8080/healthz)" = 200 ]'
	check "the reboot keeps the phone (API)" "phone name: $(phone_name)" [ "$(phone_name)" = "VM test phone" ]
	local users
	users=$(provbox user list 2>&1)
	check "the reboot keeps the admin (CLI)" "$(echo "$users" | tr '\n' ' ')" eval 'printf "%s\n" "$users" | grep -qw admin'
	check_dynamic_user " after the reboot"
	echo "# journal of provbox.service, boot 2:" >&3
	journalctl -b -u provbox.service --no-pager -o short-iso | note

	# Purge under a running systemd.
	local out rc
	out=$(dpkg --purge provbox 2>&1)
	rc=$?
	printf '%s\n' "$out" | note
	check "dpkg --purge" "exit $rc" [ $rc = 0 ]
	local load left
	load=$(prop LoadState)
	check "purge stops the daemon and drops the unit" "provbox processes: $(pgrep -x provbox | tr '\n' ' ')LoadState=$load" \
		eval '! pgrep -x provbox >/dev/null && [ "$load" = not-found ]'
	left=$(ls -d /usr/bin/provbox /lib/systemd/system/provbox.service /etc/provbox \
		/etc/systemd/system/multi-user.target.wants/provbox.service /var/lib/systemd/deb-systemd-helper-*/*provbox* 2>/dev/null)
	check "purge leaves no file, conffile or enablement" "${left:-none left}" [ -z "$left" ]
	check "purge keeps the database (documented in postrm and the README)" "$(ls -ln /var/lib/private/provbox 2>&1 | tr '\n' ' ')" \
		[ -f /var/lib/private/provbox/provbox.db ]
	check "purge says where the database is" "$(printf '%s\n' "$out" | grep -m1 'database is kept')" \
		eval 'printf "%s\n" "$out" | grep -q "database is kept in /var/lib/private/provbox"'
	echo "1..$(cat "$state/n")" >&3
	echo "# vmtest done" >&3
	sync
	systemctl poweroff
}

case $(cat "$state/phase" 2>/dev/null || echo 1) in
1) phase1 ;;
2) phase2 ;;
*) echo "# vmtest: nothing to do" >&3 ;;
esac

#!/usr/bin/env bash
# make vm-test: boots a Debian 12 VM under qemu and checks the provbox .deb
# under a real systemd (packaging/vm/guest.sh says what). Run as root: the
# root file system is built with mmdebstrap and packed with mkfs.ext4 -d,
# which keep file owners only as root.
#
#   packaging/vm/run.sh DEB [LOG]
#
# DEB is the amd64 .deb to test; LOG (default packaging/vm/last-run.log)
# gets the results (TAP), the guest's provbox journal and the serial console.
# Exit status 0 only when every check passed.
#
# The image — Debian's systemd, udev and linux-image-amd64 (its kernel and
# initrd boot the VM), nothing else from outside Debian — is built once into
# $VM_DIR (default /var/tmp/provbox-vm) and reused while the package list
# below is unchanged; each run copies it, adds the .deb and the test, and
# boots it with user-mode networking only (no host network is touched).
# qemu emulates the CPU (TCG); VM_ACCEL=kvm uses KVM instead.
set -euo pipefail

deb=${1:?usage: run.sh DEB [LOG]}
here=$(cd "$(dirname "$0")" && pwd)
log=${2:-$here/last-run.log}
vm_dir=${VM_DIR:-/var/tmp/provbox-vm}
suite=${VM_SUITE:-bookworm}
# Seconds the whole run (two boots, the checks, a reboot) may take.
timeout=${VM_TIMEOUT:-1200}

packages=systemd-sysv,udev,dbus,libnss-systemd,linux-image-amd64,iproute2,procps,kmod,curl,busybox

[ "$(id -u)" = 0 ] || { echo "vm-test: run as root (mmdebstrap and mkfs.ext4 -d keep owners only as root)" >&2; exit 1; }
for t in mmdebstrap qemu-system-x86_64 mkfs.ext4; do
	command -v "$t" >/dev/null || { echo "vm-test: $t missing (Debian packages mmdebstrap qemu-system-x86 e2fsprogs)" >&2; exit 1; }
done
[ -f "$deb" ] || { echo "vm-test: no $deb" >&2; exit 1; }

mkdir -p "$vm_dir"
key=$(printf '%s %s\n' "$suite" "$packages" | sha256sum | cut -c1-12)
base=$vm_dir/rootfs-$suite-$key
start=$(date +%s)
if [ ! -d "$base" ]; then
	echo "vm-test: building the $suite root file system with mmdebstrap (once; minutes) into $base"
	rm -rf "$base.tmp"
	# minbase: the Essential packages and apt, plus what the test needs.
	# The hooks give it a root file system in fstab, a host name, DHCP on
	# the qemu NIC (eth0) with systemd-networkd, and the pair of veth links
	# the DHCP check uses: provbox serves on pbdhcp (10.99.0.1/24, inside the
	# VM only), the client asks on pbclient from a network namespace.
	mmdebstrap --variant=minbase --include="$packages" \
		--customize-hook='echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$1/etc/fstab"' \
		--customize-hook='echo provbox-vm > "$1/etc/hostname"; echo "127.0.1.1 provbox-vm" >> "$1/etc/hosts"' \
		--customize-hook='mkdir -p "$1/etc/systemd/network" && printf "[Match]\nName=eth0\n[Network]\nDHCP=ipv4\n" > "$1/etc/systemd/network/10-eth0.network"' \
		--customize-hook='printf "[NetDev]\nName=pbdhcp\nKind=veth\n[Peer]\nName=pbclient\n" > "$1/etc/systemd/network/20-pbdhcp.netdev"' \
		--customize-hook='printf "[Match]\nName=pbdhcp\n[Link]\nRequiredForOnline=no\n[Network]\nAddress=10.99.0.1/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nConfigureWithoutCarrier=yes\n" > "$1/etc/systemd/network/20-pbdhcp.network"' \
		--customize-hook='printf "[Match]\nName=pbclient\n[Link]\nRequiredForOnline=no\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n" > "$1/etc/systemd/network/20-pbclient.network"' \
		--customize-hook='chroot "$1" systemctl enable systemd-networkd.service' \
		--customize-hook='chroot "$1" passwd -d root' \
		--format=directory "$suite" "$base.tmp" </dev/null
	mv "$base.tmp" "$base"
	echo "vm-test: image built in $(($(date +%s) - start))s"
fi

run=$(mktemp -d "$vm_dir/run.XXXXXX")
trap 'rm -rf "$run"' EXIT
root=$run/root
cp -a "$base" "$root"
install -m 0644 "$deb" "$root/root/provbox.deb"
install -m 0755 "$here/guest.sh" "$root/usr/local/sbin/provbox-vmtest"
cat >"$root/etc/systemd/system/provbox-vmtest.service" <<'UNIT'
[Unit]
Description=provbox VM test (packaging/vm/guest.sh)
After=multi-user.target network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/provbox-vmtest
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
ln -s /etc/systemd/system/provbox-vmtest.service "$root/etc/systemd/system/multi-user.target.wants/provbox-vmtest.service"
# Not needed here, and a minute of boot under TCG.
ln -s /dev/null "$root/etc/systemd/system/e2scrub_reap.service"
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
cp "$kernel" "$initrd" "$run/"
mkfs.ext4 -q -F -L provbox-vm -d "$root" "$run/disk.img" 2G
rm -rf "$root"

# TCG (qemu's emulator) by default: it runs anywhere. VM_ACCEL=kvm is
# faster where /dev/kvm works (nested KVM in a container may not).
accel=${VM_ACCEL:-tcg}
# Under TCG on a busy host the guest's CPU stalls for seconds at a time:
# the kernel's lockup and RCU stall detectors would fill the serial console
# with backtraces (slow to print) about a slowness that is the host's.
append="nowatchdog nosoftlockup rcupdate.rcu_cpu_stall_suppress=1"
[ "$accel" = tcg ] || append=
echo "vm-test: booting $(basename "$kernel") with $accel (log: $log)"
boot=$(date +%s)
rc=0
timeout "$timeout" qemu-system-x86_64 -nodefaults -no-user-config -display none \
	-machine q35 -accel "$accel" -cpu max -smp 1 -m 1024 \
	-kernel "$run/$(basename "$kernel")" -initrd "$run/$(basename "$initrd")" \
	-append "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 $append" \
	-drive "file=$run/disk.img,if=virtio,format=raw" \
	-nic user,model=virtio-net-pci \
	-serial "file:$run/console.log" -serial "file:$run/results.tap" \
	>"$run/qemu.log" 2>&1 || rc=$?
took=$(($(date +%s) - boot))

tr -d '\r' <"$run/results.tap" >"$run/results"
passed=$(grep -c '^ok ' "$run/results" || true)
failed=$(grep -c '^not ok ' "$run/results" || true)
plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$run/results")
verdict=PASS
if [ "$rc" != 0 ] || [ "$failed" != 0 ] || [ -z "$plan" ] || [ "$plan" != "$((passed + failed))" ] || ! grep -q '^# vmtest done' "$run/results"; then
	verdict=FAIL
fi
{
	echo "provbox vm-test $(date -u '+%Y-%m-%d %H:%M:%S UTC'): $verdict — $passed passed, $failed failed (plan ${plan:-missing}), qemu exit $rc"
	echo "package: $(basename "$deb"); guest: Debian $suite, $(basename "$kernel"), qemu $accel (-smp 1 -m 1024), $(qemu-system-x86_64 --version | head -1)"
	echo "time: ${took}s from boot to power-off (two boots), $(($(date +%s) - start))s in all"
	echo
	echo "== results (TAP, from the guest's second serial port)"
	cat "$run/results"
	echo
	echo "== qemu"
	cat "$run/qemu.log"
	echo
	echo "== serial console"
	# Without colours and systemd's "A start job is running" spinner.
	tr -d '\r' <"$run/console.log" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/\x1bM//g' | grep -v '^\[[* ]*\] (.*) Job .* running (.*)$'
} >"$log"
echo "vm-test: $verdict — $passed passed, $failed failed, in ${took}s (${plan:+plan $plan}); log: $log"
grep '^not ok' "$run/results" || true
[ "$verdict" = PASS ]

#!/bin/busybox sh
# The guest's /init (PID 1 until it execs the relay). Written into the initramfs
# by `maxwell image build`; parameters come from the kernel command line
# (maxwell.python=, maxwell.relay=, maxwell.canary=1), never secrets.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules.order); do
    insmod "/lib/modules/$m.ko" || echo "maxwell-guest: insmod $m failed"
done
py=; relay=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        maxwell.canary=1) echo "MAXWELL-CANARY-OK"; reboot -f ;;
        maxwell.python=*) py="${arg#maxwell.python=}" ;;
        maxwell.relay=*) relay="${arg#maxwell.relay=}" ;;
    esac
done
fail() { echo "maxwell-guest: $*"; reboot -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host \
    || fail "cannot mount the host root over 9p"
# The host's /proc, /sys, /dev, /tmp, /run are hidden behind the guest's own:
# the agent sees its VM's processes and devices, and writes only to tmpfs.
mount -t proc proc /host/proc || fail "no /host/proc"
# A jailed VMM shares its jail's view, which has no /sys: the relay then finds its
# ports through these variables (device names from the guest's own sysfs).
for d in /sys/class/virtio-ports/*; do
    case "$(cat "$d/name")" in
        maxwell.ctl) export MAXWELL_PORT_CTL="/dev/${d##*/}" ;;
        maxwell.ch) export MAXWELL_PORT_CH="/dev/${d##*/}" ;;
    esac
done
[ -d /host/sys ] && mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev || fail "no /host/dev"
mkdir -p /host/dev/shm 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /host/tmp || fail "no /host/tmp"
[ -d /host/run ] && mount -t tmpfs -o mode=0755 tmpfs /host/run
[ -d /host/var/tmp ] && mount -t tmpfs -o mode=1777 tmpfs /host/var/tmp
[ -n "$py" ] && [ -n "$relay" ] || fail "maxwell.python= and maxwell.relay= missing"
exec chroot /host "$py" -S -I "$relay"

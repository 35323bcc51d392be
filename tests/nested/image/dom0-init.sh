#!/bin/sh
# /init of the nested rig's Debian dom0 (PID 1, runs from the initramfs).
#
# Brings up the Xen toolstack (device files, xenfs, xenstored,
# xen-init-dom0, xenconsoled), mounts the runner's shares and runs the job
# the runner left there:
#   9p tag "rig" -> /rig  (read-write run directory: job.sh, lib.sh, the
#                         scenario, kernels, configs; receives results)
#   9p tag "img" -> /img  (read-only image directory: vmlinuz, guest initrd)
# The job's exit status becomes QEMU's exit status through isa-debug-exit:
# 0 -> RIG_DEBUG_EXIT_SUCCESS, anything else -> RIG_DEBUG_EXIT_FAILURE, a
# failure of this script -> RIG_DEBUG_EXIT_ERROR. Without a job it starts a
# shell on the console (cargo xtask nested shell).
#
# This file is part of the cached image, so it knows only the bootstrap:
# the share's tag and mount point, and the names /rig/protocol.sh and
# /rig/job.sh. Every protocol constant (exit values and port, the verdict
# file and its words, the [rig] line prefix) comes from /rig/protocol.sh,
# which `cargo xtask nested` generates from the selfballoon-protocol crate
# into every run directory. Without it (no share) nobody reads results:
# lines go out unprefixed and the machine just powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
export HOME=/root TERM=${TERM:-vt100}

say() { echo "${RIG_LOG_PREFIX:-}$*"; }

# QEMU's isa-debug-exit: value v written to its port makes QEMU exit
# (v<<1)|1. $1: one of protocol.sh's RIG_DEBUG_EXIT_* values (empty
# without the protocol: power off only).
qemu_exit() {
    sync
    if [ -n "$1" ] && [ -n "${RIG_DEBUG_EXIT_PORT:-}" ]; then
        printf "\\$(printf '%03o' "$1")" | dd of=/dev/port bs=1 seek="$RIG_DEBUG_EXIT_PORT" count=1 2>/dev/null
    fi
    # Not under the rig's QEMU: power off like a normal system.
    echo o > /proc/sysrq-trigger
    sleep 60
}

die() {
    say "dom0 init failed: $*"
    if [ -n "${RIG_VERDICT_FILE:-}" ]; then
        echo "$RIG_VERDICT_FAIL${RIG_VERDICT_SEP}dom0 init: $*" > "/rig/$RIG_VERDICT_FILE" 2>/dev/null
    fi
    qemu_exit "${RIG_DEBUG_EXIT_ERROR:-}"
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
# devtmpfs lacks these; bash's process substitution needs /dev/fd.
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/xen /run/lock /var/log/xen/console /var/lib/xen /var/run
ln -sfn /run /var/run 2>/dev/null || true
hostname dom0

# Xen device drivers and the 9p transport (modules kept in the image).
failed_modules=""
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs virtio_pci 9pnet_virtio 9p; do
    modprobe "$m" 2>/dev/null || failed_modules="$failed_modules $m"
done

# The run directory first: it brings the protocol.
mkdir -p /rig /img
rig_note=""
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none rig /rig 2>/dev/null; then
    rig_note="no run directory share (9p tag rig)"
elif [ -f /rig/protocol.sh ]; then
    . /rig/protocol.sh
else
    rig_note="no /rig/protocol.sh: results cannot reach the runner"
fi

say "dom0 up: $(uname -r), $(awk '/MemTotal/ {print $2 " KiB"}' /proc/meminfo)"
for m in $failed_modules; do say "modprobe $m failed"; done
[ -z "$rig_note" ] || say "$rig_note"
mount -t xenfs xenfs /proc/xen || die "mount xenfs"

mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro img /img 2>/dev/null \
    || say "no image share (9p tag img)"

# The toolstack, as xen-utils-common's init script would start it.
xenstored --pid-file /run/xen/xenstored.pid || die "xenstored"
# xenstored needs a moment before clients connect.
i=0
until xenstore-exists /local 2>/dev/null || xenstore-ls / >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 50 ] && die "xenstored does not answer"; sleep 0.2
done
xen-init-dom0 >/tmp/xen-init-dom0.log 2>&1 || die "xen-init-dom0: $(cat /tmp/xen-init-dom0.log)"
logdir=/var/log/xen/console
[ -d /rig ] && mountpoint -q /rig && logdir=/rig/console
mkdir -p "$logdir"
xenconsoled --pid-file=/run/xen/xenconsoled.pid --log=guest --log-dir="$logdir" || die "xenconsoled"

say "toolstack up: xen $(xl info xen_version 2>/dev/null), free $(xl info free_memory 2>/dev/null) MiB"

if [ -f /rig/job.sh ]; then
    cd /rig
    sh /rig/job.sh
    rc=$?
    say "job exited $rc"
    if [ $rc = 0 ]; then qemu_exit "$RIG_DEBUG_EXIT_SUCCESS"; else qemu_exit "$RIG_DEBUG_EXIT_FAILURE"; fi
fi

say "no job: shell on the console (exit powers off)"
setsid sh -c 'exec sh -i </dev/hvc0 >/dev/hvc0 2>&1' || sh -i
qemu_exit "${RIG_DEBUG_EXIT_SUCCESS:-}"

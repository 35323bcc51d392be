#!/bin/busybox sh
# /init of the Linux PV baseline guest: a Debian kernel and busybox. It
# prints one ready line on its console (hvc0, which xenconsoled logs) and
# then idles, leaving the kernel's built-in Xen balloon driver to follow
# `xl mem-set`. Every 10 s it logs its view of memory.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
meminfo() { awk '/^(MemTotal|MemFree):/ {printf "%s %s KiB ", $1, $2}' /proc/meminfo; }
echo "linux-guest: ready: $(uname -r) $(meminfo)"
while true; do
    sleep 10
    echo "linux-guest: $(meminfo)"
done

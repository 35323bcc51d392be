#!/usr/bin/env bash
# Builds the nested rig's images from Debian packages only (run as root):
#
#   build.sh <recipe dir> <output dir>
#
# Output (all in <output dir>):
#   xen            the Xen hypervisor, uncompressed (QEMU -kernel needs it)
#   vmlinuz        Debian's Linux kernel (dom0 and the Linux PV guest)
#   dom0.cpio.gz   dom0 root: bookworm minbase + Xen toolstack, /init
#   linux-guest.cpio.gz  busybox initrd for the Linux PV baseline guest
#   versions.txt   package versions that went in
#
# The hypervisor, the toolstack and the kernel all come from one apt run
# against bookworm + bookworm-security, so `xl` always matches the Xen it
# talks to. The caller (cargo xtask image) caches the output under a key
# hashed from the recipe files.
set -euo pipefail

recipe=$(realpath "$1")
out=$(realpath -m "$2")
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# debootstrap's .deb cache survives rebuilds (a recipe change re-runs the
# build but need not re-download the base system).
debcache=${RIG_DEB_CACHE:-$(dirname "$out")/debs}

[ "$(id -u)" = 0 ] || { echo "build.sh: must run as root (debootstrap, chroot)" >&2; exit 1; }
mkdir -p "$out" "$debcache"

work=$(mktemp -d /var/tmp/selfballoon-image.XXXXXX)
root=$work/root
cleanup() {
    # Unmount anything left mounted in the chroot, then drop the tree.
    for m in dev/pts dev proc sys; do
        mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m" || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

step() { echo "[image] $(date +%T) $*"; }

# Packages from the recipe, comments and blank lines dropped.
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$recipe/packages.txt")

step "debootstrap bookworm minbase"
debootstrap --variant=minbase --cache-dir="$debcache" bookworm "$root" "$mirror" \
    > "$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }

# apt inside the chroot: both suites, no daemons started by maintainer
# scripts, no recommends.
cat > "$root/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $security bookworm-security main
SRC
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

step "apt: upgrade from bookworm-security, install ${pkgs[*]}"
in_root apt-get -q update > "$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; exit 1; }
in_root apt-get -q -y -o Dpkg::Options::=--force-confdef dist-upgrade >> "$work/apt.log" 2>&1 \
    || { tail -30 "$work/apt.log" >&2; exit 1; }
in_root apt-get -q -y --no-install-recommends install "${pkgs[@]}" >> "$work/apt.log" 2>&1 \
    || { tail -30 "$work/apt.log" >&2; exit 1; }

# The kernel and the hypervisor are unpacked, not installed: no
# initramfs-tools, no grub hooks. The kernel package is whatever the
# linux-image-amd64 metapackage points at in these suites.
kpkg=$(in_root apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
[ -n "$kpkg" ] || { echo "build.sh: cannot resolve linux-image-amd64" >&2; exit 1; }
step "download $kpkg and xen-hypervisor-4.17-amd64"
mkdir -p "$root/tmp/debs"
(cd "$root/tmp/debs" && in_root sh -c "cd /tmp/debs && apt-get -q download $kpkg xen-hypervisor-4.17-amd64") \
    >> "$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; exit 1; }
kdeb=$(ls "$root"/tmp/debs/linux-image-*.deb)
xdeb=$(ls "$root"/tmp/debs/xen-hypervisor-*.deb)
mkdir -p "$work/kernel" "$work/xen"
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$xdeb" "$work/xen"
kver=$(ls "$work/kernel/lib/modules")

# Versions that went in, for `cargo xtask image` to show and check.
{
    echo "kernel $(dpkg-deb -f "$kdeb" Package) $(dpkg-deb -f "$kdeb" Version)"
    echo "xen-hypervisor $(dpkg-deb -f "$xdeb" Version)"
    for p in xen-utils-4.17 xenstore-utils busybox-static; do
        echo "$p $(in_root dpkg-query -W -f '${Version}' "$p")"
    done
} > "$work/versions.txt"
rm -rf "$root/tmp/debs"

step "kernel $kver: keep the modules dom0 and the rig need"
# Only the module trees the rig uses are kept (Xen backends and device
# files, 9p over virtio for the run directory, virtio itself); the rest
# of the ~400 MB tree would only slow the initramfs unpack under TCG.
kmods=lib/modules/$kver/kernel
mkdir -p "$root/lib/modules/$kver"
cp -a "$work/kernel/lib/modules/$kver/modules.order" "$work/kernel/lib/modules/$kver/modules.builtin"* \
    "$root/lib/modules/$kver/"
for d in drivers/xen fs/9p net/9p drivers/virtio drivers/net/xen-netback.ko drivers/block/xen-blkback \
         fs/netfs fs/fscache; do
    if [ -e "$work/kernel/$kmods/$d" ]; then
        mkdir -p "$root/$(dirname "$kmods/$d")"
        cp -a "$work/kernel/$kmods/$d" "$root/$kmods/$d"
    fi
done
in_root depmod -a "$kver"

step "trim the root"
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bash-completion} \
       "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
       "$root"/usr/lib/python3* "$root"/usr/lib/x86_64-linux-gnu/perl* "$root"/usr/share/perl* \
       "$root"/usr/lib/xen-4.17/boot "$root"/usr/share/qemu* "$root"/boot/* \
       "$root"/usr/lib/udev/hwdb.* "$root"/etc/udev/hwdb.bin "$root"/usr/lib/x86_64-linux-gnu/gconv \
       "$root"/usr/bin/perl* "$root"/usr/bin/python3*
# Runtime directories the toolstack expects.
mkdir -p "$root"/var/lib/xen "$root"/var/log/xen/console "$root"/var/run/xen "$root"/run/xen \
         "$root"/rig
install -m 0755 "$recipe/dom0-init.sh" "$root/init"

step "pack dom0.cpio.gz"
(cd "$root" && find . -xdev -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet | gzip -1) \
    > "$work/dom0.cpio.gz"

step "pack linux-guest.cpio.gz (busybox initrd)"
g=$work/guest
mkdir -p "$g"/{bin,dev,proc,sys,tmp}
cp "$root/bin/busybox" "$g/bin/busybox"
install -m 0755 "$recipe/linux-guest-init.sh" "$g/init"
(cd "$g" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet | gzip -9) \
    > "$work/linux-guest.cpio.gz"

cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
gzip -dc "$work/xen/boot/xen-4.17-amd64.gz" > "$work/xen.elf"

# Publish atomically-ish: files first, then the marker the caller checks.
install -m 0644 "$work/vmlinuz" "$out/vmlinuz"
install -m 0644 "$work/xen.elf" "$out/xen"
install -m 0644 "$work/dom0.cpio.gz" "$out/dom0.cpio.gz"
install -m 0644 "$work/linux-guest.cpio.gz" "$out/linux-guest.cpio.gz"
install -m 0644 "$work/versions.txt" "$out/versions.txt"
step "done: $(du -sh "$out/dom0.cpio.gz" | cut -f1) dom0 image; $(tr '\n' ';' < "$out/versions.txt")"

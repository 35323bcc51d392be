#!/usr/bin/env bash
# Installs the host packages the nested rig needs on Debian 12 (as root):
# QEMU 10 from bookworm-backports, Xen 4.17 hypervisor (only its image is
# used, as QEMU's -kernel), debootstrap to build the dom0 image, and the
# tools to pack it. Idempotent: does nothing when everything is present.
set -euo pipefail

need=()
[ -e /boot/xen-4.17-amd64.gz ] || need+=(xen-hypervisor-4.17-amd64)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
have_qemu=1
command -v qemu-system-x86_64 >/dev/null || have_qemu=0
[ ${#need[@]} -eq 0 ] && [ $have_qemu = 1 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-host-deps: need root to install: ${need[*]}" >&2
    exit 1
fi

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# The hypervisor package pulls in grub hooks; we only want the image.
if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if [ $have_qemu = 0 ]; then
    # QEMU 10 (TCG runs nested Xen reliably); its data packages must come
    # from the same suite.
    apt-get install -y -q --no-install-recommends -t bookworm-backports \
        qemu-system-x86 qemu-system-data seabios ipxe-qemu
fi

#!/usr/bin/env bash
# Installs what the test rig needs on a Debian 12 host (as root):
#   - QEMU 10 from bookworm-backports (bookworm's 7.2 does not run nested
#     Xen reliably under TCG), with 9p (virtfs) support for the rig's
#     run directory;
#   - the Xen 4.17 hypervisor image (/boot/xen-4.17-amd64.gz) for tier 2
#     (our kernel as dom0); the nested tier takes Xen, the kernel and the
#     toolstack from its own image so that they always match;
#   - debootstrap, cpio and gzip to build that image;
#   - a C++ compiler (g++), which libfuzzer-sys needs to build libFuzzer
#     for `cargo xtask fuzz` and the short fuzz step of `cargo xtask test`.
# Idempotent: does nothing (not even apt-get update) when all is present.
set -euo pipefail

need=()
[ -e /boot/xen-4.17-amd64.gz ] || need+=(xen-hypervisor-4.17-amd64)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v cpio >/dev/null || need+=(cpio)
command -v gzip >/dev/null || need+=(gzip)
command -v c++ >/dev/null || need+=(g++)

# QEMU: present and at least version 8 (backports carries 10).
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null; then
    major=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
    [ "${major:-0}" -ge 8 ] && qemu_ok=1
fi

if [ ${#need[@]} -eq 0 ] && [ $qemu_ok = 1 ]; then
    echo "install-host-deps: everything present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-host-deps: need root to install: ${need[*]} $([ $qemu_ok = 1 ] || echo qemu-system-x86)" >&2
    exit 1
fi

# bookworm-backports for QEMU (deb822 source; skipped if configured).
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
# The hypervisor package's recommends pull in grub hooks; we only want
# the image file.
if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if [ $qemu_ok = 0 ]; then
    # QEMU 10 and its firmware/data packages from the same suite.
    apt-get install -y -q --no-install-recommends -t bookworm-backports \
        qemu-system-x86 qemu-system-data seabios ipxe-qemu
fi
echo "install-host-deps: done"

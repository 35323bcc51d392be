# Scenario density: many of our guests share a host whose free memory is
# less than the sum of their maxmem, each running a phased workload whose
# peaks are staggered, with Linux PV guests running the same demand beside
# them for comparison.
#  - DENSITY_N (6) of our guests, maxmem 256 MiB each (6 x 256 = 1536 MiB,
#    more than the ~1400 MiB the host has free), booted at 48 MiB
#    (populate-on-demand) and then given a toolstack target of 256 MiB, so
#    that only their self-ballooning sizes them (mode linux,
#    selfballoon_min_usable_mb 16, a 2 s tick);
#  - every guest runs the same program from the same moment, shifted by
#    its slot (PERIOD_S / N, or less in a short run): idle, then 96 MiB of `mixed` pages touched, a working set
#    rewritten, held (verified), freed (verified), idle, again every
#    PERIOD_S (120) s: one or two guests peak at a time;
#  - one Linux PV guest per size in DENSITY_LX (MiB, comma-separated;
#    default 192) runs the same demand from its busybox init (96 MiB
#    written into a tmpfs, checksummed, held, checked, removed, every
#    PERIOD_S s); Linux has no self-ballooning, so it holds its size;
#  - the workloads run DENSITY_S (100) s; the long form is
#    `DENSITY_S=600 cargo xtask nested density` (10 minutes).
# Checks: every one of our guests is alive at the end, 0 verification
# mismatches and 0 pages lost in each, each verified pages, and each one's
# memory moved by >= 64 MiB during the run (memory moves between guests).
# The Linux guests' survival is reported, not checked (it is the figure
# to compare with).
# Samples: density.csv, charted as density.svg: every guest's memory and
# the host's free memory on one chart. `selfballoonctl top` runs beside
# it, its table on the log every 10 s.
# Figures (metrics.txt): the largest and mean sum of our guests' memory,
# guests per GiB (ours: N / that largest sum; Linux: 1 / its size), and
# guest-minutes with the TCG mode, for fault rates.
# timeout: 600

ds=data/selfballoon
N=${DENSITY_N:-6}
RUN_S=${DENSITY_S:-100}
LX_SIZES=${DENSITY_LX:-192}
PERIOD_S=120
MAXMEM=256
PEAK_MIB=96
# A guest's slot: PERIOD_S / N, shorter when the run is (the short form's
# last guest must peak and free within it).
slot=$((PERIOD_S / N))
fit=$(((RUN_S - 40) / (N > 1 ? N - 1 : 1)))
[ "$fit" -lt "$slot" ] && slot=$fit
[ "$slot" -ge 5 ] || fail "DENSITY_S=$RUN_S is too short for $N guests"
hold=$slot
# What touching the peak costs under TCG (~10 s) comes out of the rest.
rest=$((PERIOD_S - hold - 10))
[ "$rest" -ge 5 ] || fail "DENSITY_N=$N leaves no idle time in a ${PERIOD_S} s period"

# --- the Linux guests' demand: an /init overlay on the busybox initrd -------
# Linux hands the kernel command line's unknown name=value words to init as
# its environment (lw_mib, lw_hold, lw_period, lw_off).
ov=/tmp/lx-overlay
rm -rf "$ov"
mkdir -p "$ov"
cat > "$ov/init" << 'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /w
mount -t tmpfs -o size=95% tmpfs /w
meminfo() { awk '/^(MemTotal|MemFree):/ {printf "%s %s KiB ", $1, $2}' /proc/meminfo; }
echo "linux-guest: ready: $(uname -r) $(meminfo)"
head -c 1048576 /dev/urandom > /blk
sleep "${lw_off:-1}"
pass=0
want=""
while true; do
    t0=$(date +%s)
    i=0
    while [ $i -lt "${lw_mib:-96}" ]; do cat /blk; i=$((i + 1)); done > /w/data
    sum=$(md5sum < /w/data)
    [ -n "$want" ] || want=$sum
    echo "linux-guest: pass $pass: ${lw_mib:-96} MiB written $(meminfo)"
    sleep "${lw_hold:-20}"
    got=$(md5sum < /w/data)
    if [ "$sum" = "$want" ] && [ "$got" = "$want" ]; then
        echo "linux-guest: pass $pass: verified"
    else
        echo "linux-guest: pass $pass: MISMATCH"
    fi
    rm -f /w/data
    pass=$((pass + 1))
    left=$(( ${lw_period:-120} - ($(date +%s) - t0) ))
    [ $left -gt 0 ] && sleep $left
done
EOF
chmod 0755 "$ov/init"
# Concatenated initramfs archives: the later /init replaces the first.
(cd "$ov" && echo init | busybox cpio -o -H newc 2> /dev/null | busybox gzip -9) > /tmp/lx-overlay.cpio.gz
cat "$RIG_IMG/linux-guest.cpio.gz" /tmp/lx-overlay.cpio.gz > /tmp/linux-density.cpio.gz
log "Linux initrd with the demand: $(wc -c < /tmp/linux-density.cpio.gz) bytes"

free0=$(free_mib)
lx_total=0
lx_names=()
for s in ${LX_SIZES//,/ }; do
    lx_total=$((lx_total + s))
    lx_names+=("lx$s")
done
log "host free ${free0} MiB; our guests' maxmem $((N * MAXMEM)) MiB, Linux guests $lx_total MiB"
metric host_free_start_mib "$free0"
metric our_guests "$N"
metric maxmem_sum_mib $((N * MAXMEM + lx_total))
assert_ge $((N * MAXMEM + lx_total)) "$free0" "the guests' maxmem adds up to more than the host has free"

# Linux first (it boots in 20-50 s); its first peak comes with slot 0's.
k=0
for s in ${LX_SIZES//,/ }; do
    off=$((60 + k * slot))
    create_guest linux-pv name="lx$s" memory="$s" maxmem="$s" ramdisk=/tmp/linux-density.cpio.gz \
        extra="console=hvc0 loglevel=4 lw_mib=$PEAK_MIB lw_hold=$hold lw_period=$PERIOD_S lw_off=$off"
    k=$((k + 1))
done

names=()
for i in $(seq 1 "$N"); do
    names+=("sb$i")
    create_guest selfballoon name="sb$i" memory=48 maxmem=$MAXMEM extra="selfballoon_mode=linux"
done
for d in "${names[@]}"; do
    xs_wait "$(dompath "$d")/$ds/current" '^[0-9]+$' 120 > /dev/null
    p=$(dompath "$d")
    xenstore-write "$p/memory/selfballoon/selfballoon_min_usable_mb" 16
    xenstore-write "$p/memory/selfballoon/selfballoon_interval" 2
    mem_set "$d" $MAXMEM
done
# A new target first grows a guest to it, then the controller brings it
# down: all settled before the workloads start (and the figures count).
for d in "${names[@]}"; do
    wait_mem "$d" le 64 120 > /dev/null
done
for d in "${lx_names[@]}"; do
    wait_console "$d" 'linux-guest: ready' 180 > /dev/null
done
show_domains

sample_start density.csv "${names[@]}" "${lx_names[@]}"
(
    trap - ERR
    set +e
    "$RIG_DIR/selfballoonctl" top --interval 10 2>&1 | while IFS= read -r l; do log "top| $l"; done
) &
echo $! >> "$RIG_SAMPLERS"

step "workloads for ${RUN_S}s: ${PEAK_MIB} MiB peaks, one slot of ${slot}s per guest, period ${PERIOD_S}s"
t_start=$SECONDS
i=0
for d in "${names[@]}"; do
    off=$((1 + i * slot))
    xs_write "$(dompath "$d")/memory/workload" \
        "idle:${off}s,content:mixed,alloc:${PEAK_MIB}M,touch:seq,touch:ws=25%,hold:${hold}s,free:all,idle:${rest}s,repeat@2"
    i=$((i + 1))
done

lx_dead=()
end=$((SECONDS + RUN_S))
while [ $SECONDS -lt $end ]; do
    sleep 10
    for d in "${names[@]}"; do assert_alive "$d" "$d (after $((SECONDS - t_start)) s)"; done
    for d in "${lx_names[@]}"; do
        case " ${lx_dead[*]} " in *" $d "*) continue ;; esac
        case $(_state "$d") in
            gone | *s* | *c*)
                # Seen within 10 s of stopping (or before the workloads
                # began: a Linux guest's first peak comes 60 s after boot).
                at=$((SECONDS - t_start))
                log "Linux guest $d stopped by ${at} s into the workloads ($(_why_stopped "$d"))"
                lx_dead+=("$d")
                metric "${d}_lost_by_s" "$at"
                destroy "$d"
                ;;
        esac
    done
done
wall=$((SECONDS - t_start))
sample_stop
show_domains
"$RIG_DIR/selfballoonctl" status 2>&1 | while IFS= read -r l; do log "  $l"; done || true

step "every guest alive, nothing lost, memory moved"
total_verified=0
# One awk for every guest's range, one xenstore-read per guest: each fork
# costs in the emulated dom0.
declare -A lo hi
while read -r d a b; do
    lo[$d]=$a
    hi[$d]=$b
done < <(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /\.mem_mib$/) { c[i] = $i; sub(/\.mem_mib$/, "", c[i]) }; next }
    { for (i in c) if ($i != "") { v = $i + 0
          if (!(i in mn) || v < mn[i]) mn[i] = v; if (!(i in mx) || v > mx[i]) mx[i] = v } }
    END { for (i in c) print c[i], mn[i], mx[i] }' "$RIG_DIR/density.csv")
for d in "${names[@]}"; do
    assert_alive "$d"
    p=$(dompath "$d")
    mapfile -t v < <(xenstore-read "$p/$ds/workload_mismatches" "$p/$ds/swap_lost" \
        "$p/$ds/workload_verified" "$p/$ds/pageouts")
    mism=${v[0]:-} lost=${v[1]:-} ver=${v[2]:-0} outs=${v[3]:-}
    log "$d: ${lo[$d]}-${hi[$d]} MiB, $ver pages verified, $mism mismatches, $lost lost, $outs page-outs"
    assert_eq "$mism" 0 "$d's verification mismatches"
    assert_eq "$lost" 0 "$d's pages lost"
    assert_ge "$ver" 1 "$d verified pages"
    assert_ge "$((${hi[$d]:-0} - ${lo[$d]:-0}))" 64 "$d's memory moved"
    total_verified=$((total_verified + ver))
done
metric verified_pages "$total_verified"
for d in "${lx_names[@]}"; do
    f=$RIG_DIR/console/guest-$d.log
    ok=$(grep -ac 'pass [0-9]*: verified' "$f" || true)
    bad=$(grep -ac 'MISMATCH' "$f" || true)
    case " ${lx_dead[*]} " in
        *" $d "*) alive=0 ;;
        *) alive=1 ;;
    esac
    log "$d: alive $alive, $ok passes verified, $bad mismatches"
    metric "${d}_survived" "$alive"
    metric "${d}_passes_verified" "$ok"
    metric "${d}_mismatches" "$bad"
done

# The figures from the samples: the sum of our guests' memory per row.
read -r peak mean minfree < <(awk -F, -v n="${names[*]}" '
    NR == 1 { split(n, want, " "); for (i = 1; i <= NF; i++) for (j in want)
                  if ($i == want[j] ".mem_mib") cols[i] = 1
              for (i = 1; i <= NF; i++) if ($i == "free_mib") fc = i; next }
    { s = 0; for (i in cols) s += $i; if (s > peak) peak = s; tot += s; rows++
      if (fc && $fc != "" && (minfree == "" || $fc < minfree)) minfree = $fc }
    END { printf "%d %d %d\n", peak, tot / rows, minfree }' "$RIG_DIR/density.csv")
metric ours_peak_sum_mib "$peak"
metric ours_mean_sum_mib "$mean"
metric host_free_min_mib "$minfree"
metric ours_guests_per_gib "$(awk -v n="$N" -v p="$peak" 'BEGIN { printf "%.1f", n * 1024 / p }')"
for s in ${LX_SIZES//,/ }; do
    metric "lx${s}_guests_per_gib" "$(awk -v p="$s" 'BEGIN { printf "%.1f", 1024 / p }')"
done
metric tcg "${RIG_TCG:-?}"
metric workload_wall_s "$wall"
metric guest_minutes "$(awk -v n=$((N + ${#lx_names[@]})) -v w="$wall" 'BEGIN { printf "%.1f", n * w / 60 }')"
pass "$N guests, peak sum ${peak} MiB of ${free0} MiB free (${wall} s); Linux: ${#lx_dead[@]} of ${#lx_names[@]} lost"

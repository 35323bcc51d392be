# Scenario hostoom: the host runs out of memory while our guests want to
# grow, and they page out to their own compressed tier instead.
#  - three of our guests (maxmem 256 MiB, mode linux with
#    selfballoon_min_usable_mb 16 and a 2 s tick) idle near their floor;
#  - a hog domain (self-ballooning off) takes all but ~48 MiB of what the
#    host has free;
#  - each guest then gets a workload of 64 MiB (dom0 writes
#    `memory/workload`), touching it and
#    rewriting a working set, verifying every page it rewrites: the
#    balloon cannot grow (no free host memory), so the pages go to
#    frontswap/zpool (`frontswap_pages`, `pageouts` > 0); the guests stay up
#    and lose nothing;
#  - the hog goes: the guests grow again and their frontswap count falls
#    (page-ins of the working set, self-shrinking).
# Checks: every guest alive throughout; while the hog is there the host
# stays nearly full and the guests' pages are in frontswap; afterwards
# every guest is above its size under the hog; 0 verification mismatches,
# 0 pages lost. Samples: hostoom.csv (chart hostoom.svg).
# timeout: 420

ds=data/selfballoon
names=(sw1 sw2 sw3)
for d in "${names[@]}"; do
    create_guest selfballoon name="$d" memory=48 maxmem=256 extra="selfballoon_mode=linux"
done
for d in "${names[@]}"; do
    p=$(dompath "$d")
    xs_wait "$p/$ds/current" '^[0-9]+$' 120 > /dev/null
    xenstore-write "$p/memory/selfballoon/selfballoon_min_usable_mb" 16
    xenstore-write "$p/memory/selfballoon/selfballoon_interval" 2
    mem_set "$d" 256
done
# A new target first grows a guest to it; let the controller bring it down.
for d in "${names[@]}"; do
    wait_mem "$d" le 48 120 > /dev/null
done
sample_start hostoom.csv "${names[@]}" hog $ds/current $ds/frontswap_pages $ds/pageouts \
    $ds/swap_refused $ds/workload_mismatches
sleep 10
show_domains

free=$(free_mib)
hog=$((free - 48))
log "host has $free MiB free; the hog takes $hog MiB"
create_guest selfballoon name=hog memory=$hog maxmem=$hog extra="noselfballooning"
xs_wait "$(dompath hog)/$ds/current" '^[0-9]+$' 180 > /dev/null
log "host free memory now $(free_mib) MiB"

step "the guests want 64 MiB each with the host full"
declare -A before fs_hog
for d in "${names[@]}"; do
    before[$d]=$(mem_of "$d")
    xs_write "$(dompath "$d")/memory/workload" \
        "content:mixed,alloc:64M,touch:seq,touch:ws=20%,idle:1s,repeat@3"
done
end=$((SECONDS + 60))
while [ $SECONDS -lt $end ]; do
    sleep 5
    for d in "${names[@]}" hog; do assert_alive "$d" "$d under the hog"; done
done
show_domains
hogfree=$(free_mib)
metric host_free_under_hog_mib "$hogfree"
assert_le "$hogfree" 64 "the host stays full while the hog runs"
for d in "${names[@]}"; do
    p=$(dompath "$d")
    fs=$(xs_read "$p/$ds/frontswap_pages")
    outs=$(xs_read "$p/$ds/pageouts")
    ref=$(xs_read "$p/$ds/swap_refused")
    m=$(mem_of "$d")
    log "$d under the hog: ${before[$d]} -> $m MiB, frontswap $fs pages, $outs page-outs, $ref refused"
    metric "${d}_mib_under_hog" "$m"
    metric "${d}_frontswap_pages_under_hog" "$fs"
    metric "${d}_pageouts_under_hog" "$outs"
    metric "${d}_swap_refused_under_hog" "$ref"
    fs_hog[$d]=$fs
    assert_ge "$outs" 1 "$d paged out to its tier"
    assert_ge "$fs" 1 "$d holds pages in frontswap"
    assert_eq "$(xs_read "$p/$ds/workload_mismatches")" 0 "$d's verification mismatches under the hog"
done

step "the hog goes; the guests grow back"
destroy hog
wait_gone hog 60
t0=$SECONDS
for d in "${names[@]}"; do
    t=$(wait_mem "$d" ge 72 120)
    log "$d at >= 72 MiB after ${t}s"
    metric "${d}_regrow_s" "$t"
done
sleep 30
for d in "${names[@]}"; do
    fs=$(xs_read "$(dompath "$d")/$ds/frontswap_pages")
    log "$d: frontswap ${fs_hog[$d]} pages under the hog, $fs now"
    metric "${d}_frontswap_pages_after" "$fs"
    assert_le "$fs" "$(( ${fs_hog[$d]} / 2 ))" "$d's frontswap count falls once it has room"
done
metric recover_s $((SECONDS - t0))
sample_stop
show_domains
for d in "${names[@]}"; do
    p=$(dompath "$d")
    assert_alive "$d"
    mism=$(xs_read "$p/$ds/workload_mismatches")
    lost=$(xs_read "$p/$ds/swap_lost")
    ver=$(xs_read "$p/$ds/workload_verified")
    ins=$(xs_read "$p/$ds/pageins")
    log "$d: $(mem_of "$d") MiB, $ver verified, $ins page-ins, $mism mismatches, $lost lost"
    assert_eq "$mism" 0 "$d's verification mismatches"
    assert_eq "$lost" 0 "$d's pages lost"
    assert_ge "$ver" 1 "$d verified pages"
done
metric tcg "${RIG_TCG:-?}"
pass "3 guests paged out under a host-filling hog ($hogfree MiB free) and recovered"

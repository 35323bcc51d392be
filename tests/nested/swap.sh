# Scenario swap: demand paging into the in-guest compressed pool, and the
# seed's frontswap self-shrinking, on the real hypervisor.
# A guest with maxmem 256 MiB (self-ballooning off, so only the toolstack
# moves it; the seed's 2011 controller for self-shrinking, ticking every
# 2 s) runs a workload that commits 160 MiB of `mixed` pages, then keeps
# rewriting 5% of them (verifying each page before it rewrites it) for 60
# passes, and then holds them.
#  - the boot log says tmem is absent (ENOSYS on Xen 4.17) and zpool is in
#    use;
#  - `xl mem-set` 128 MiB: `xl list` shows the guest at the target within
#    60 s; frontswap holds pages, the workload keeps verifying, 0
#    mismatches (about 3x compression makes 160 MiB fit: an in-guest pool
#    only wins back what compression saves);
#  - `xl mem-set` 48 MiB, far below that: the guest settles at the lowest
#    size it can reach and publishes it (`swap_floor`), losing nothing;
#  - back to 128 MiB, the workload runs to its end; then `xl mem-set`
#    256 MiB: nothing pushes
#    pages out any more, and self-shrinking brings them back, the frontswap
#    count falling on every tick to cur - cur/20 (hysteresis 20; the
#    inertia has run out while the count stood still at the floor).
# Samples: swap.csv (chart swap.svg).
# timeout: 1200

ds=data/selfballoon
PROGRAM='alloc:160M,touch:seq,touch:ws=5%,idle:2s,repeat:60@2'
create_guest selfballoon name=sw memory=256 maxmem=256 \
    extra="loglevel=info noselfballooning selfballoon_mode=2011 workload=$PROGRAM"
console_follow sw
wait_console sw 'tmem: absent \(ENOSYS\); swap backend zpool' 120 > /dev/null
wait_console sw "$RIG_MARK_RUNTIME" 120 > /dev/null
p=$(dompath sw)
xs_write "$p/memory/selfballoon/selfballoon_interval" 2
xs_wait "$p/$ds/selfballoon_interval" '^2$' 30 > /dev/null
xs_wait "$p/$ds/swap_backend" '^zpool$' 30 > /dev/null
sample_start swap.csv sw $ds/current $ds/frontswap_pages $ds/zpool_frames \
    $ds/zpool_ratio_pct $ds/swap_floor $ds/pageouts $ds/pageins $ds/page_faults \
    $ds/swap_refused $ds/workload_mismatches $ds/workload_phase $ds/ticks

step "wait until the workload has touched its 160 MiB"
xs_wait "$p/$ds/workload_phase" '^(touch-ws|idle)$' 240 > /dev/null
log "workload resident: $(xs_read "$p/$ds/workload_resident") KiB, guest $(mem_of sw) MiB"

# --- 160 MiB committed under a 128 MiB target ---------------------------------
mem_set sw 128
secs=$(wait_mem sw le 129 60)
log "at 128 MiB after ${secs}s"
metric seconds_to_128 "$secs"
sleep 10
out=$(xs_read "$p/$ds/frontswap_pages")
frames=$(xs_read "$p/$ds/zpool_frames")
ratio=$(xs_read "$p/$ds/zpool_ratio_pct")
log "frontswap $out pages in $frames pool frames (ratio ${ratio}%)"
metric frontswap_pages_at_128 "$out"
metric zpool_frames_at_128 "$frames"
metric zpool_ratio_pct_at_128 "$ratio"
assert_ge "$out" 5000 "pages went to frontswap"
assert_le "$(mem_of sw)" 129 "still at the target"
v0=$(xs_read "$p/$ds/workload_verified")
sleep 10
v1=$(xs_read "$p/$ds/workload_verified")
log "workload verified $((v1 - v0)) pages in 10 s at 128 MiB"
assert_ge "$((v1 - v0))" 1 "the workload keeps verifying"
assert_eq "$(xs_read "$p/$ds/workload_mismatches")" 0 "verification mismatches at 128 MiB"

# --- far lower: the floor ----------------------------------------------------
mem_set sw 48
floor=$(xs_wait "$p/$ds/swap_floor" '^[1-9][0-9]*$' 120)
sleep 5
floor=$(xs_read "$p/$ds/swap_floor")
cur=$(xs_read "$p/$ds/current")
log "target 48 MiB out of reach: floor $floor KiB, holding $cur KiB ($(mem_of sw) MiB in xl list)"
metric floor_kib "$floor"
assert_ge "$cur" $((48 * 1024)) "above the unreachable target"
assert_le "$cur" $((floor + 4096)) "holding the published floor"
assert_eq "$(xs_read "$p/$ds/workload_mismatches")" 0 "verification mismatches at the floor"

# --- back up: self-shrinking ---------------------------------------------------
# At the floor the pool is full and the workload waits for frames (it
# cannot fault a page in without paging another out). Back at 128 MiB it
# runs again to its end; then it holds still.
mem_set sw 128
step "wait for the workload to finish its passes"
xs_wait "$p/$ds/workload_phase" '^done$' 600 > /dev/null
assert_eq "$(xs_read "$p/$ds/swap_floor")" 0 "no floor once the target is met"
metric frontswap_pages_before_shrink "$(xs_read "$p/$ds/frontswap_pages")"
assert_eq "$(xs_read "$p/$ds/workload_mismatches")" 0 "verification mismatches"
mem_set sw 256
t_up=$(awk -F, 'END { print $1 + 0 }' "$RIG_DIR/swap.csv")
# One sample per tick: wait for each new tick count, read frontswap_pages.
last=$(xs_read "$p/$ds/ticks")
shrink=()
end=$((SECONDS + 120))
while [ ${#shrink[@]} -lt 12 ] && [ $SECONDS -lt $end ]; do
    t=$(xs_read "$p/$ds/ticks")
    if [ "$t" != "$last" ]; then
        last=$t
        shrink+=("$(xs_read "$p/$ds/frontswap_pages")")
    fi
    sleep 0.2
done
log "frontswap pages per tick after mem-set 256 (t=${t_up}s): ${shrink[*]}"
metric frontswap_per_tick "${shrink[*]}"
[ ${#shrink[@]} -ge 8 ] || fail "too few ticks sampled: ${shrink[*]}"
# Ticks and samples are not atomic: allow a sample to have missed a tick
# (two shrinks between samples) but every step must be one or two of the
# seed's: cur -> cur - cur/20.
falls=0
for i in $(seq 1 $((${#shrink[@]} - 1))); do
    a=${shrink[$((i - 1))]} b=${shrink[$i]}
    one=$((a - a / 20))
    two=$((one - one / 20))
    if [ "$b" -eq "$a" ]; then continue; fi
    falls=$((falls + 1))
    if [ "$b" -ne "$one" ] && [ "$b" -ne "$two" ]; then
        fail "tick $i: $a -> $b, the seed shrinks to $one"
    fi
done
assert_ge "$falls" 6 "the frontswap count falls tick by tick"
assert_eq "$(xs_read "$p/$ds/workload_mismatches")" 0 "verification mismatches"
assert_eq "$(xs_read "$p/$ds/swap_lost")" 0 "pages lost"
metric pageouts "$(xs_read "$p/$ds/pageouts")"
metric pageins "$(xs_read "$p/$ds/pageins")"
metric page_faults "$(xs_read "$p/$ds/page_faults")"
metric cr2_fixups "$(xs_read "$p/$ds/cr2_fixups")"
sample_stop

# Scenario abuse: dom0 writes hostile values for 90 s into every tunable,
# `memory/target` and `memory/workload` (garbage, overlong, extremes,
# signs, hex, embedded newlines and removals) while the guest runs a
# verifying workload with its pages partly in frontswap. The guest must
# stay up, lose nothing (0 verification mismatches, 0 pages lost), keep
# every tunable at a valid value, and still follow a good value at the end.
# The long form (`ABUSE_S=600 cargo xtask nested abuse`) runs 10 minutes.
# timeout: 900

ds=data/selfballoon
ABUSE_S=${ABUSE_S:-90}
PROGRAM='alloc:96M,touch:seq,touch:ws=10%,idle:1s,repeat@2'
create_guest selfballoon name=ab memory=160 maxmem=160 \
    extra="loglevel=info selfballoon_mode=linux workload=$PROGRAM"
console_follow ab
wait_console ab "$RIG_MARK_RUNTIME" 120 > /dev/null
p=$(dompath ab)
xs_wait "$p/$ds/workload_phase" '^(touch-ws|idle)$' 240 > /dev/null
# Some of it in frontswap while the abuse runs.
mem_set ab 96
wait_mem ab le 97 90 > /dev/null
sample_start abuse.csv ab $ds/current $ds/frontswap_pages $ds/workload_verified \
    $ds/workload_mismatches $ds/last_rejection_key

big=$(head -c 4000 /dev/zero | tr '\0' '9')
values=(0 -1 +1 abc 0x10 1e3 '' ' 5' '5 ' $'5\n\n' 18446744073709551616
    4294967296 4294967295 99999999999999999999999 "$big" $'\x01\x7f' '1;2' 2011x)
keys=(selfballooning selfballoon_interval selfballoon_downhysteresis
    selfballoon_uphysteresis selfballoon_min_usable_mb selfballoon_reserved_mb
    mode frontswap_selfshrinking frontswap_hysteresis frontswap_inertia
    zpool_max_percent adaptive_fast_halflife_s adaptive_headroom_min_pct
    adaptive_min_headroom_mb)
step "hostile writes for ${ABUSE_S}s"
end=$((SECONDS + ABUSE_S))
n=0
while [ $SECONDS -lt $end ]; do
    v=${values[$((n % ${#values[@]}))]}
    k=${keys[$((n % ${#keys[@]}))]}
    case $((n % 7)) in
        0) xenstore-rm "$p/memory/selfballoon/$k" 2> /dev/null || true ;;
        1) xenstore-write -- "$p/memory/target" "$v" 2> /dev/null || true ;;
        2) xenstore-write -- "$p/memory/workload" "alloc:${v}M,$v" 2> /dev/null || true ;;
        3) xenstore-rm "$p/memory/target" 2> /dev/null || true ;;
        *) xenstore-write -- "$p/memory/selfballoon/$k" "$v" 2> /dev/null || true ;;
    esac
    n=$((n + 1))
    # The toolstack's own value back now and then, as xl would rewrite it.
    if [ $((n % 50)) -eq 0 ]; then
        xenstore-write "$p/memory/target" $((96 * 1024))
        assert_alive ab "the guest (after $n hostile writes)"
    fi
    sleep 0.05
done
log "$n hostile writes"
metric hostile_writes "$n"
xenstore-write "$p/memory/target" $((96 * 1024))
assert_alive ab "the guest"
sleep 10

step "every tunable in force is valid"
for k in "${keys[@]}"; do
    v=$(xs_read "$p/$ds/$k")
    case $k in
        mode) assert_match "$v" '^(2011|linux|adaptive)$' "$k in force" ;;
        selfballooning | frontswap_selfshrinking) assert_match "$v" '^[01]$' "$k in force" ;;
        *) assert_match "$v" '^[0-9]+$' "$k in force" ;;
    esac
done
mism=$(xs_read "$p/$ds/workload_mismatches")
lost=$(xs_read "$p/$ds/swap_lost")
verified=$(xs_read "$p/$ds/workload_verified")
log "workload: $verified pages verified, $mism mismatches, $lost pages lost"
assert_eq "$mism" 0 "verification mismatches"
assert_eq "$lost" 0 "pages lost"
assert_match "$(xs_read "$p/$ds/last_rejection_reason")" . "rejections are published"

step "good values still take effect"
xs_write "$p/memory/selfballoon/selfballoon_interval" 3
xs_wait "$p/$ds/selfballoon_interval" '^3$' 30 > /dev/null
xs_write "$p/memory/selfballoon/selfballooning" 0
xs_wait "$p/$ds/selfballooning" '^0$' 30 > /dev/null
mem_set ab 128
wait_mem ab ge 127 60 > /dev/null
assert_eq "$(xs_read "$p/$ds/workload_mismatches")" 0 "verification mismatches"
sample_stop

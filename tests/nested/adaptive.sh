# Scenario adaptive: the guest in `adaptive` mode follows the simulator.
# A guest with maxmem 512 MiB boots with selfballoon_mode=adaptive and a
# phased workload on its command line (PROGRAM below). Its size, sampled
# once a second, at the end of each hold/idle phase must be within 10% of
# what the simulator predicts for the same program (EXPECT below), i.e.
# the guest runs the controller the simulator scores.
#
# EXPECT is the output of (host side, from the repository root):
#   cargo xtask sim --phases "$PROGRAM" --policies adaptive $SIM_ARGS
# (the last column of each hold/idle row). A host test (sim/tests/nested_prediction.rs)
# reruns that command and fails when EXPECT is stale: regenerate it then.
# SIM_ARGS describe this guest to the model: 512 MiB, the kernel's own
# frames (current_kib - totalram_kib), its committed memory when idle and
# its balloon floor as the guest reports them (the metrics guest_* of a
# run), 5 s ticks, no measurement lag (the guest reads its committed
# memory at the tick).
# timeout: 1200

PROGRAM='idle:30s,alloc:160M,touch:seq,hold:90s,free:128M,idle:120s,alloc:64M,touch:seq,hold:60s,free:all,idle:120s'
SIM_ARGS='--ram-mib 512 --kernel-kib 5564 --base-committed-kib 10540 --floor-kib 17852 --tick-s 5 --lag-ticks 0 --tail-s 0'
# phase-name predicted-MiB, one per hold/idle phase in order.
EXPECT='idle 31.7
hold 319.3
idle 190.7
hold 254.4
idle 157.8'

ds=data/selfballoon
create_guest selfballoon name=ad memory=512 maxmem=512 \
    extra="loglevel=info selfballoon_mode=adaptive workload=$PROGRAM"
console_follow ad
wait_console ad "$RIG_MARK_RUNTIME" 120 > /dev/null
p=$(dompath ad)
xs_wait "$p/$ds/mode" '^adaptive$' 60 > /dev/null
log "guest in adaptive mode; program $PROGRAM"

# Poll the phase and the size together (one xenstore-read for both, so a
# phase's last size is read before the next phase moves it), writing
# adaptive.csv as we go. The rig's sampler reads key by key and is too
# coarse for this under TCG.
step "follow the program to its end"
csv="$RIG_DIR/adaptive.csv"
echo "t,ad.$ds/current,ad.$ds/requested_target_kib,ad.$ds/committed_kib,ad.$ds/workload_phase" > "$csv"
ends=""
last=""
lastcur=""
end=$((SECONDS + 900))
while :; do
    vals=$(xenstore-read "$p/$ds/workload_phase" "$p/$ds/current" \
        "$p/$ds/requested_target_kib" "$p/$ds/committed_kib" 2>/dev/null | tr '\n' ' ') || vals=""
    read -r ph cur req com <<< "$vals"
    if [ -n "$ph" ] && [ -n "$cur" ]; then
        printf '%s,%s,%s,%s,%s\n' "$(_secs "$RIG_T0" "$(_now_us)")" "$cur" "$req" "$com" "$ph" >> "$csv"
        if [ "$ph" != "$last" ]; then
            if [ "$last" = hold ] || [ "$last" = idle ]; then
                ends+="$last $(awk -v k="$lastcur" 'BEGIN { printf "%.1f", k / 1024 }')"$'\n'
            fi
            last=$ph
        fi
        lastcur=$cur
        [ "$ph" != done ] || break
    fi
    [ $SECONDS -lt $end ] || fail "the program did not finish (phase ${ph:-?})"
    sleep 0.2
done
ends=${ends%$'\n'}

# The guest's own figures, for SIM_ARGS.
kernel_kib=$(( $(xs_read "$p/$ds/current_kib") - $(xs_read "$p/$ds/totalram_kib") ))
metric guest_kernel_kib "$kernel_kib"
metric guest_committed_idle_kib "$(xs_read "$p/$ds/committed_kib")"
metric guest_floor_kib "$(xs_read "$p/$ds/floor")"
metric guest_pressure_ticks "$(xs_read "$p/$ds/adaptive_pressure_ticks")"

log "guest at the end of each phase: $(echo "$ends" | tr '\n' ';')"
log "simulator predicted:            $(echo "$EXPECT" | tr '\n' ';')"

n=0
worst=0
while read -r name want; do
    n=$((n + 1))
    got_line=$(echo "$ends" | sed -n "${n}p")
    [ -n "$got_line" ] || fail "phase $n ($name) not seen in the samples"
    got_name=${got_line% *}
    got=${got_line#* }
    assert_eq "$got_name" "$name" "phase $n is a $name phase"
    err=$(awk -v g="$got" -v w="$want" 'BEGIN { d = (g - w) / w * 100; if (d < 0) d = -d; printf "%.1f", d }')
    log "phase $n $name: guest $got MiB, predicted $want MiB ($err% off)"
    metric "phase${n}_${name}_guest_mib" "$got"
    metric "phase${n}_${name}_predicted_mib" "$want"
    worst=$(awk -v a="$worst" -v b="$err" 'BEGIN { print (b > a) ? b : a }')
done <<< "$EXPECT"
metric worst_error_pct "$worst"
mism=$(xs_read "$p/$ds/workload_mismatches")
assert_eq "$mism" 0 "verification mismatches"
assert_alive ad "the guest"
assert_le "$worst" 10 "every phase within 10% of the prediction"
pass "$n phases within $worst% of the simulator's prediction"

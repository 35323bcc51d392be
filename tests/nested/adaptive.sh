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
# frames and committed memory as the guest reports them, its balloon
# floor, 5 s ticks, no measurement lag (the guest reads its committed
# memory at the tick).
# timeout: 1200

PROGRAM='idle:30s,alloc:160M,touch:seq,hold:90s,free:128M,idle:120s,alloc:64M,touch:seq,hold:60s,free:all,idle:120s'
SIM_ARGS='--ram-mib 512 --kernel-mib 4 --base-committed-kib 4096 --floor-mib 8 --tick-s 5 --lag-ticks 0 --tail-s 0'
# phase-name predicted-MiB, one per hold/idle phase in order.
EXPECT='idle 24.0
hold 287.6
idle 189.8
hold 222.9
idle 149.4'

ds=data/selfballoon
create_guest selfballoon name=ad memory=512 maxmem=512 \
    extra="loglevel=info selfballoon_mode=adaptive workload=$PROGRAM"
console_follow ad
wait_console ad 'runtime:' 120 > /dev/null
p=$(dompath ad)
sample_start adaptive.csv ad $ds/current $ds/workload_phase $ds/committed_kib \
    $ds/current_kib $ds/totalram_kib $ds/requested_target_kib $ds/adaptive_fast_kib \
    $ds/adaptive_slow_kib $ds/adaptive_rise_kib $ds/adaptive_headroom_kib \
    $ds/adaptive_pressure_ticks $ds/ticks $ds/floor
xs_wait "$p/$ds/mode" '^adaptive$' 60 > /dev/null
log "guest in adaptive mode; program $PROGRAM"

step "wait for the program to finish"
xs_wait "$p/$ds/workload_phase" '^done$' 900 > /dev/null
sleep 2
sample_stop

# The guest's own figures, for SIM_ARGS.
kernel_kib=$(( $(xs_read "$p/$ds/current_kib") - $(xs_read "$p/$ds/totalram_kib") ))
metric guest_kernel_kib "$kernel_kib"
metric guest_committed_idle_kib "$(xs_read "$p/$ds/committed_kib")"
metric guest_floor_kib "$(xs_read "$p/$ds/floor")"
metric guest_pressure_ticks "$(xs_read "$p/$ds/adaptive_pressure_ticks")"

# The size at the end of each run of a hold/idle phase in the samples:
# "name MiB" lines, in order.
ends=$(awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
        ph = $col["ad.'$ds'/workload_phase"]; cur = $col["ad.'$ds'/current"]
        if (ph == "" || cur == "") next
        if (ph != last && (last == "hold" || last == "idle")) printf "%s %.1f\n", last, lastcur / 1024
        last = ph; lastcur = cur
    }
    END { if (last == "hold" || last == "idle") printf "%s %.1f\n", last, lastcur / 1024 }
' "$RIG_DIR/adaptive.csv")
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

# Scenario selfballoon: the self-balloon controller on the real hypervisor.
# A guest with maxmem 512 MiB, controller in its default (linux) mode,
# tick every 2 s (set through xenstore, which also tests the tunables):
#  - idle: memory falls toward the goal in 1/8 steps (downhysteresis 8);
#  - a workload allocates and touches 200 MiB: memory rises at once (the
#    allocation balloons up) and the next tick's target covers the demand;
#  - after it frees the 200 MiB, dom0 writes downhysteresis 2 and the
#    descent visibly speeds up (1/2 steps);
#  - invalid values (0, -1, abc, 2^70) are rejected, published as the last
#    rejection, and the value in force stays;
#  - the workload verified every page it read: 0 mismatches.
# Then dom0 switches the controller to the seed's `2011` mode, which has no
# reserve and no floor, and the idle guest settles at the balloon driver's
# own safety floor.
# Figures: memory held by the idle guest after settling, beside a Linux PV
# guest's (no self-ballooning in Linux >= 5.3: it keeps what it is given);
# ticks from the demand step until the guest holds the demand.
# timeout: 900

ds=data/selfballoon
create_guest selfballoon name=sb memory=512 maxmem=512 extra="loglevel=info"
console_follow sb
wait_console sb "$RIG_MARK_RUNTIME" 120 > /dev/null
p=$(dompath sb)
xs_write "$p/memory/selfballoon/selfballoon_interval" 2
xs_wait "$p/$ds/selfballoon_interval" '^2$' 30 > /dev/null
sample_start selfballoon.csv sb $ds/current $ds/target $ds/requested_target_kib \
    $ds/current_kib $ds/goal_kib $ds/committed_kib $ds/policy_floor_kib $ds/policy_clamped \
    $ds/ticks $ds/selfballoon_downhysteresis $ds/workload_phase

# The controller's step toward the goal, per tick, from the status it
# publishes with each tick (current, goal and the new target of that same
# tick): (target - goal) / (current - goal), for ticks between two times
# where the floor does not clamp and the gap is above 2 MiB. 7/8 for
# downhysteresis 8, 1/2 for 2. Prints the mean (mawk has no sort).
step_ratio() {
    local from=$1 to=$2
    awk -F, -v from="$from" -v to="$to" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            t = $1 + 0; tick = $col["sb.'$ds'/ticks"]
            tgt = $col["sb.'$ds'/requested_target_kib"] + 0
            goal = $col["sb.'$ds'/goal_kib"] + 0
            cur = $col["sb.'$ds'/current_kib"] + 0
            clamp = $col["sb.'$ds'/policy_clamped"]
            if (t < from || t > to || tick == "" || tick == last) next
            last = tick
            if (clamp == "none" && cur - goal > 2048 && tgt < cur) { sum += (tgt - goal) / (cur - goal); n++ }
        }
        END { if (n == 0) print "none"; else printf "%.3f\n", sum / n }' "$RIG_DIR/selfballoon.csv"
}
now_s() { awk -F, 'END { print $1 + 0 }' "$RIG_DIR/selfballoon.csv"; }

# --- idle descent, downhysteresis 8 -------------------------------------------
step "idle descent for 40 s"
t_idle0=$(now_s)
sleep 40
t_idle1=$(now_s)
r8=$(step_ratio "$t_idle0" "$t_idle1")
log "idle descent: mean step ratio $r8 (7/8 = 0.875 expected)"
[ "$r8" != none ] || fail "no unclamped descent steps sampled"
assert_ge "$r8" 0.84 "1/8 steps"
assert_le "$r8" 0.91 "1/8 steps"
settled=$(xs_read "$p/$ds/current")
metric ours_idle_held_kib "$settled"
metric ours_idle_xl_list_mib "$(mem_of sb)"

# --- demand spike -------------------------------------------------------------
before_ticks=$(xs_read "$p/$ds/ticks")
xs_write "$p/memory/workload" "alloc:200M,touch:seq,hold:30s,free:200M,idle:1s"
step "wait until the guest holds the 200 MiB demand"
end=$((SECONDS + 60))
while :; do
    committed=$(xs_read "$p/$ds/committed_kib" 2>/dev/null || echo 0)
    current=$(xs_read "$p/$ds/current")
    phase=$(xs_read "$p/$ds/workload_phase" 2>/dev/null || echo none)
    if [ "$committed" -ge $((200 * 1024)) ] && [ "$current" -ge "$committed" ]; then
        break
    fi
    [ $SECONDS -lt $end ] || fail "guest did not reach the demand (committed $committed, current $current, phase $phase)"
    sleep 0.5
done
ticks=$(( $(xs_read "$p/$ds/ticks") - before_ticks ))
metric spike_ticks_to_hold_demand "$ticks"
assert_le "$ticks" 2 "demand held within a tick or two"

# --- faster descent with downhysteresis 2 -------------------------------------
# While the workload holds its memory, dom0 asks for faster descent and a
# lower floor (min_usable_mb 32, so that more of the descent is unclamped).
xs_write "$p/memory/selfballoon/selfballoon_downhysteresis" 2
xs_write "$p/memory/selfballoon/selfballoon_min_usable_mb" 32
xs_wait "$p/$ds/selfballoon_downhysteresis" '^2$' 30 > /dev/null
xs_wait "$p/$ds/selfballoon_min_usable_mb" '^32$' 30 > /dev/null
t_fast0=$(now_s)
xs_wait "$p/$ds/workload_phase" 'idle|done' 90 > /dev/null
sleep 20
t_fast1=$(now_s)
r2=$(step_ratio "$t_fast0" "$t_fast1")
log "descent with downhysteresis 2: mean step ratio $r2 (1/2 expected)"
[ "$r2" != none ] || fail "no unclamped descent steps sampled after downhysteresis 2"
assert_le "$r2" 0.6 "1/2 steps"
metric step_ratio_downhys8 "$r8"
metric step_ratio_downhys2 "$r2"

# --- invalid tunables -----------------------------------------------------------
for v in 0 -1 abc 1180591620717411303424; do
    # `--`: "-1" is a value, not an option of xenstore-write.
    log "xenstore-write $p/memory/selfballoon/selfballoon_downhysteresis '$v'"
    xenstore-write -- "$p/memory/selfballoon/selfballoon_downhysteresis" "$v"
    got=$(xs_wait "$p/$ds/last_rejection_value" "^$v\$" 30)
    reason=$(xs_read "$p/$ds/last_rejection_reason")
    log "rejected '$got': $reason"
    assert_eq "$(xs_read "$p/$ds/selfballoon_downhysteresis")" 2 "value in force after '$v'"
done

# --- integrity and the Linux comparison --------------------------------------
mism=$(xs_read "$p/$ds/workload_mismatches")
verified=$(xs_read "$p/$ds/workload_verified")
log "workload: $verified pages verified, $mism mismatches"
assert_eq "$mism" 0 "verification mismatches"
assert_ge "$verified" 51200 "pages verified"
sleep 10
metric ours_idle_after_spike_kib "$(xs_read "$p/$ds/current")"

# --- the seed's mode: no reserve, no floor but the driver's safety floor ------
xs_write "$p/memory/selfballoon/mode" 2011
xs_wait "$p/$ds/mode" '^2011$' 30 > /dev/null
sleep 20
held=$(xs_read "$p/$ds/current")
floor=$(xs_read "$p/$ds/floor")
log "2011 mode: idle guest holds $held KiB (balloon safety floor $floor KiB)"
metric ours_idle_2011_kib "$held"
metric ours_idle_2011_xl_list_mib "$(mem_of sb)"
assert_le "$held" $((floor + 8192)) "2011 mode settles near the safety floor"
create_guest linux-pv name=linux memory=512 maxmem=512
wait_console linux 'linux-guest: ready' 120 > /dev/null
sleep 20
metric linux_idle_xl_list_mib "$(mem_of linux)"
metric ours_idle_xl_list_mib_end "$(mem_of sb)"
sample_stop
assert_alive sb "the guest"
pass "1/8 descent ($r8), spike held in $ticks ticks, downhys 2 ($r2), 4 rejections, 0 mismatches"

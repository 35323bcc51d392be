# Scenario smoke: our kernel as a domU created by `xl create`, running its
# selftest with xenstore: it reads its domid and memory/target, and waits
# for a watch that fires when dom0 writes memory/selfballoon/selftest-ping.
# Checks: `Test result: SUCCESS` on its PV console (xenconsoled log), and
# it powers itself off (SHUTDOWN_poweroff; a crash would be reason 3).
# timeout: 240

create_guest selfballoon name=smoke memory=128 maxmem=128 extra="selftest loglevel=debug"
d=$(domid smoke)

# The guest announces the watch; write the key it waits for (up to 30 s).
line=$(wait_console smoke 'selftest: waiting for watch|Test result: ' 90)
if [[ $line == *"waiting for watch"* ]]; then
    xs_write "/local/domain/$d/memory/selfballoon/selftest-ping" 1
fi

expect_selftest_success smoke 90

reason=$(wait_shutdown smoke 60)
log "shutdown reason: $reason"
assert_eq "$reason" poweroff "shutdown reason"
pass "selftest SUCCESS, powered off"

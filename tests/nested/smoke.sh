# Scenario smoke: our kernel as a domU created by `xl create`, running its
# selftest with xenstore: it reads its domid and memory/target, and watches
# and writes a key of its own (nothing is asked of dom0, so the selftest
# passes on a plain `xl create` too).
# Checks: `Test result: SUCCESS` on its PV console (xenconsoled log), and
# it powers itself off (SHUTDOWN_poweroff; a crash would be reason 3).
# timeout: 240

create_guest selfballoon name=smoke memory=128 maxmem=128 extra="selftest loglevel=debug"

expect_selftest_success smoke 90

reason=$(wait_shutdown smoke 60)
log "shutdown reason: $reason"
assert_eq "$reason" poweroff "shutdown reason"
pass "selftest SUCCESS, powered off"

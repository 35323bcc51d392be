# Expected to FAIL. `cargo xtask test` runs it to check that the rig turns
# a guest that hangs into a failed run naming the timeout, long before the
# scenario's own timeout, with the guest's console tail in the output. The
# guest stops at boot (crash=hang: halts forever with interrupts enabled)
# and never prints its result line.
# timeout: 180

create_guest selfballoon name=hang memory=64 maxmem=64 extra="selftest crash=hang"
wait_console hang "$RIG_RESULT_PREFIX" 20 > /dev/null
pass "a hanging guest printed a result?"

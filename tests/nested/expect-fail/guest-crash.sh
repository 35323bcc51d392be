# Expected to FAIL. `cargo xtask test` runs it to check that the rig turns
# a guest that crashes into a failed run, within the timeout, with the
# guest's console tail in the output. The guest faults on purpose at boot
# (crash=pf), reports the exception and shuts down with SHUTDOWN_crash.
# timeout: 180

create_guest selfballoon name=crash memory=64 maxmem=64 extra="selftest crash=pf"
wait_console crash "$RIG_RESULT_PREFIX$RIG_RESULT_SUCCESS" 90 > /dev/null
pass "a crashing guest passed?"

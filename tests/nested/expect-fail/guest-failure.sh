# Expected to FAIL. `cargo xtask test` runs it to check that the rig turns
# a guest that reports a wrong result into a failed run that quotes it. The
# guest's selftest runs with one check failing on purpose (crash=fail), so
# it prints `Test result: FAILURE` and shuts down as crashed.
# timeout: 180

create_guest selfballoon name=failure memory=64 maxmem=64 extra="selftest crash=fail"
expect_selftest_success failure 90
pass "a failing selftest passed?"

# Scenario linux-baseline: the Linux PV guest (Debian kernel + busybox)
# boots and its balloon driver follows `xl mem-set` 256 -> 128 -> 256 MiB;
# the samples (linux-baseline.csv, chart next to it) show both moves.
# Figures: seconds from mem-set until `xl list` shows the new size.
# timeout: 300

create_guest linux-pv name=linux memory=256 maxmem=256
wait_console linux 'linux-guest: ready' 120 > /dev/null
sample_start linux-baseline.csv linux
sleep 3

mem_set linux 128
t=$(wait_mem linux le 129 60)
metric linux_256_to_128_s "$t"
sleep 3

mem_set linux 256
t=$(wait_mem linux ge 255 60)
metric linux_128_to_256_s "$t"
sleep 3
sample_stop

# The samples must show the dip; the recovery is what `xl list` says now
# (under load the sampler's rows can lag its last seconds, and wait_mem
# above has seen the guest at 256 MiB already).
low=$(csv_min linux-baseline.csv linux.mem_mib)
last=$(mem_of linux)
log "samples: min $low MiB; xl list now $last MiB"
assert_le "$low" 129 "sampled minimum"
assert_ge "$last" 255 "final size"
assert_eq "$(_state linux | tr -d -- '-rb')" "" "linux still running"
destroy linux
pass "256 -> 128 -> 256 MiB"

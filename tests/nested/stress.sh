# Scenario stress: the balloon driver under repeated large moves while a
# workload keeps allocating, touching (so frames get dirty and must be
# scrubbed before release), verifying and freeing memory. The toolstack
# target jumps between sizes that are and are not 2 MiB multiples, so both
# superpage and single-page extents are used. The guest must follow every
# move, never lose a page of data (0 verification mismatches) and survive.
# timeout: 600

create_guest selfballoon name=sb memory=256 maxmem=256 \
    extra="noselfballooning workload=alloc:32M,touch:ws=50%,hold:1s,free:32M,idle:1s,repeat"
console_follow sb
wait_console sb "$RIG_MARK_RUNTIME" 120 > /dev/null
p=$(dompath sb)
sample_start stress.csv sb data/selfballoon/current data/selfballoon/workload_resident
cycles=0
prev=256
for mib in $(for _ in 1 2 3; do echo 64 250 48 200 61 256 80 129 50 256 96 255 64 256; done); do
    mem_set sb "$mib"
    # Growing: at least the target (less 1 MiB of rounding); shrinking: at
    # most it.
    if [ "$mib" -gt "$prev" ]; then
        wait_mem sb ge $((mib - 1)) 60 > /dev/null
    else
        wait_mem sb le $((mib + 1)) 60 > /dev/null
    fi
    prev=$mib
    cycles=$((cycles + 1))
    assert_alive sb "the guest (after $cycles moves)"
done
sleep 3
mism=$(xs_read "$p/data/selfballoon/workload_mismatches")
verified=$(xs_read "$p/data/selfballoon/workload_verified")
missed=$(xs_read "$p/data/selfballoon/target_missed_events")
log "workload: $verified pages verified, $mism mismatches; $missed target changes found by re-read"
assert_eq "$mism" 0 "verification mismatches"
assert_ge "$verified" 1 "pages verified"
sample_stop
pass "$cycles moves followed, $verified pages verified, 0 mismatches, $missed watch events missed"

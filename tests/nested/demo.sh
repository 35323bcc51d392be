# The demo (cargo xtask demo): our kernel as a domU next to nothing else,
# its console streamed here, `xl list` shown as it runs. It self-balloons
# down while idle, a workload takes 150 MiB after 35 s (the guest grows at
# once) and frees it 15 s later (it shrinks again, 1/8 of the gap per 5 s
# tick); then the toolstack moves its target 256 -> 128 -> 256 MiB. Its
# own status in xenstore is sampled into demo.csv (charted as demo.svg).
# timeout: 420

create_guest selfballoon name=selfballoon memory=256 maxmem=256 \
    extra="loglevel=info workload=idle:35s,alloc:150M,touch:seq,hold:15s,free:150M,idle:3600s"
console_follow selfballoon
sample_start demo.csv selfballoon data/selfballoon/current data/selfballoon/target \
    data/selfballoon/goal_kib data/selfballoon/committed_kib
step "watch it run for 60 s"
for _ in 1 2 3 4 5 6; do sleep 10; show_domains; done

mem_set selfballoon 128
for _ in 1 2; do sleep 10; show_domains; done
mem_set selfballoon 256
for _ in 1 2; do sleep 10; show_domains; done

step "its status in xenstore"
xs_ls "$(dompath selfballoon)/data" 2>&1 | while IFS= read -r l; do log "  $l"; done || true
sample_stop
assert_alive selfballoon "the guest"
pass "guest ran for ~100 s; chart: demo.svg"

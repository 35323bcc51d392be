# The demo (cargo xtask demo): our kernel as a domU next to nothing else,
# its console streamed here, `xl list` shown as it runs, the toolstack
# moving its target 256 -> 128 -> 256 MiB, and its own status in xenstore
# sampled into demo.csv (charted as demo.svg).
# timeout: 420

create_guest selfballoon name=selfballoon memory=256 maxmem=256 extra="loglevel=info"
console_follow selfballoon
sample_start demo.csv selfballoon data/selfballoon/current data/selfballoon/target \
    data/selfballoon/goal data/selfballoon/committed data/selfballoon/mode
step "watch it run for 30 s"
for _ in 1 2 3; do sleep 10; show_domains; done

mem_set selfballoon 128
for _ in 1 2; do sleep 10; show_domains; done
mem_set selfballoon 256
for _ in 1 2; do sleep 10; show_domains; done

step "its status in xenstore"
xs_ls "$(dompath selfballoon)/data" 2>&1 | while IFS= read -r l; do log "  $l"; done || true
sample_stop
case $(_state selfballoon) in
    gone | *c*) fail "the guest did not survive the demo" ;;
esac
pass "guest ran for ~70 s; chart: demo.svg"

# Soak (a benchmark of robustness, not part of `cargo xtask test`): one
# guest after another is moved 64 <-> 256 MiB with `xl mem-set` as fast as
# it follows, for 8 minutes. Counts the moves and every way a guest stops
# following: a stop (crash or triple fault; those whose saved registers
# are Xen's own are the emulator's, see the README), or a move that takes
# over 30 s (a hang; the post-mortem is kept and the soak goes on with a
# new guest). Also sums the interrupts the guests saw nested on their IRQ
# stack or delivered with interrupts disabled. Prints figures as metrics;
# passes unless the rig itself breaks.
#
#   cargo xtask nested tests/nested/soak/balloon-soak.sh
#
# timeout: 900

budget_s=480
end=$(( $(date +%s) + budget_s ))
moves=0 guests=0 stops=0 xen_state=0 hangs=0 nested=0 masked=0
while [ "$(date +%s)" -lt "$end" ]; do
    guests=$((guests + 1))
    create_guest selfballoon name=soak memory=256 maxmem=256 extra="noselfballooning" > /dev/null
    wait_console soak "$RIG_MARK_RUNTIME" 60 > /dev/null
    p=$(dompath soak)
    why=""
    while [ -z "$why" ] && [ "$(date +%s)" -lt "$end" ]; do
        for mib in 64 256; do
            xl mem-set soak "${mib}m" || { why=stop; st=$(_state soak); break; }
            t0=$(date +%s)
            while :; do
                st=$(_state soak)
                case $st in *s* | *c* | gone) why=stop; break ;; esac
                m=$(mem_of soak)
                if [ "$mib" = 64 ] && [ "$m" -le 65 ]; then break; fi
                if [ "$mib" = 256 ] && [ "$m" -ge 255 ]; then break; fi
                if [ $(( $(date +%s) - t0 )) -ge 30 ]; then why=hang; break; fi
                sleep 0.1
            done
            [ -z "$why" ] || break
            moves=$((moves + 1))
        done
    done
    n=$(xenstore-read "$p/data/selfballoon/nested_irqs" 2>/dev/null) || n=0
    k=$(xenstore-read "$p/data/selfballoon/masked_irqs" 2>/dev/null) || k=0
    nested=$((nested + n)) masked=$((masked + k))
    case $why in
        stop)
            stops=$((stops + 1))
            post_mortem crashed
            if grep -q "^soak$RIG_EMULATOR_FAULT_SEP" "$RIG_DIR/$RIG_EMULATOR_FAULT_FILE" 2>/dev/null; then
                xen_state=$(grep -c "^soak$RIG_EMULATOR_FAULT_SEP" "$RIG_DIR/$RIG_EMULATOR_FAULT_FILE")
            fi
            log "guest $guests stopped ($st) after $moves moves in all"
            ;;
        hang)
            hangs=$((hangs + 1))
            log "guest $guests stopped following after $moves moves in all (state $st, $m MiB)"
            post_mortem all
            ;;
    esac
    # Keep the evidence of each guest apart.
    for f in xenctx-soak.txt hvmctx-soak.txt xenstore-soak.txt console/guest-soak.log; do
        [ -f "$RIG_DIR/$f" ] && mv "$RIG_DIR/$f" "$RIG_DIR/${f%.*}-$guests.${f##*.}"
    done
    xl destroy soak 2>/dev/null || true
    sleep 1
done
# The emulator's stops are counted above; they must not fail the rig run.
rm -f "$RIG_DIR/$RIG_EMULATOR_FAULT_FILE"
metric soak_moves "$moves"
metric soak_guests "$guests"
metric soak_stops "$stops"
metric soak_stops_with_xen_state "$xen_state"
metric soak_hangs "$hangs"
metric soak_nested_irqs "$nested"
metric soak_masked_irqs "$masked"
pass "$moves moves by $guests guests in ${budget_s}s: $stops stops ($xen_state with Xen's state), $hangs hangs; $nested nested and $masked masked interrupts survived"

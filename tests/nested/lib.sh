# shellcheck shell=bash
# Helpers for nested-rig scenarios (tests/nested/<scenario>.sh).
#
# Sourced by bash in the Debian dom0 of the nested rig (job.sh written by
# `cargo xtask nested`). The run directory is /rig (shared with the host
# over 9p, it becomes results/<scenario>-<stamp>/); the image directory
# /img holds the Debian kernel and the Linux guest's initrd. Everything a
# helper prints with `log`/`step` reaches the runner's terminal.
#
# A scenario is a bash script run with `set -eE -o pipefail`: any failing
# command fails the scenario (with its line number) unless guarded; it
# ends with `pass` (or `fail "why"`). Helpers:
#   step TEXT / log TEXT            progress lines for the runner
#   create_guest CFG [k=v...]       xl create xen-config/CFG.cfg with overrides
#                                   (name= memory= maxmem= extra= vcpus= ...)
#   domid NAME / dompath NAME       domain id / /local/domain/<id>
#   wait_console NAME REGEX [T] [FROM_LINE]  wait for a console line; prints it
#   console_lines NAME              lines in NAME's console log so far
#   wait_dmesg REGEX [T]            wait for a line in `xl dmesg` (port 0xe9)
#   wait_shutdown NAME [T]          wait for NAME to shut down; prints reason
#   wait_gone NAME [T]              wait until NAME no longer exists
#   console_follow NAME             stream NAME's console to the runner
#   show_domains                    log `xl list` (and free memory)
#   mem_set NAME MIB                xl mem-set
#   mem_of NAME                     memory in MiB as `xl list` shows it
#   wait_mem NAME le|ge MIB [T]     wait for `xl list` memory; prints seconds
#   free_mib                        `xl info free_memory`
#   xs_read/xs_write/xs_ls/xs_rm/xs_exists PATH [VALUE]  xenstore wrappers
#   xs_wait PATH REGEX [T]          wait for a xenstore value
#   sample_start CSV DOM... [KEY...]  sample once a second in the background
#   sample_stop                     stop all samplers
#   destroy NAME                    xl destroy (no error if absent)
#   assert_eq A B [MSG] / assert_match S RE [MSG] / assert_le A B [MSG] /
#   assert_ge A B [MSG]             numeric compares accept decimals
#   assert_alive NAME [WHAT]        NAME exists, not crashed or shut down
#   csv_min/csv_max/csv_last CSV COLUMN
#   metric NAME VALUE               a figure for the report (metrics.txt)
#   pass [MSG] / fail MSG           the verdict
#
# Constants of the kernel-rig protocol (RIG_RESULT_*, RIG_VERDICT_*,
# RIG_EMULATOR_FAULT_*, RIG_MARK_* console markers, RIG_LOG_PREFIX, ...)
# come from $RIG_DIR/protocol.sh, which `cargo xtask nested` generates from
# the selfballoon-protocol crate (protocol/) into every run directory.

RIG_DIR=${RIG_DIR:-/rig}
RIG_IMG=${RIG_IMG:-/img}
RIG_SAMPLERS=/run/rig-samplers
RIG_T0=${RIG_T0:-${EPOCHREALTIME/./}}
export RIG_DIR RIG_IMG RIG_T0

if [ -f "$RIG_DIR/protocol.sh" ]; then
    # shellcheck source=/dev/null
    . "$RIG_DIR/protocol.sh"
else
    echo "lib.sh: no $RIG_DIR/protocol.sh (cargo xtask nested writes it into the run directory)" >&2
    return 1 2>/dev/null || exit 1
fi

# --- time and output --------------------------------------------------------

# Microseconds since the epoch / milliseconds since the scenario started.
_now_us() { echo "${EPOCHREALTIME/./}"; }
_now_ms() { echo $(( ($(_now_us) - RIG_T0) / 1000 )); }
# Seconds (3 decimals) between two _now_us values.
_secs() { local d=$(( $2 - $1 )); printf '%d.%03d' $((d / 1000000)) $((d / 1000 % 1000)); }

# Progress goes to the console through fd RIG_LOG_FD (set by rig_run), so
# that helpers whose stdout is captured with $(...) still report.
log() { echo "$RIG_LOG_PREFIX$*" >&"${RIG_LOG_FD:-2}"; }
step() {
    log "$RIG_STEP_PREFIX$*"
    printf '%s\n' "$*" > "$RIG_DIR/.step"
}

# The first verdict stands: a helper that failed inside $(...) has already
# written it, and the failing assignment that follows must not replace it.
pass() {
    [ -s "$RIG_DIR/$RIG_VERDICT_FILE" ] && exit 1
    log "$RIG_VERDICT_PASS${1:+$RIG_VERDICT_SEP$*}"
    printf '%s\n' "$RIG_VERDICT_PASS${1:+$RIG_VERDICT_SEP$*}" > "$RIG_DIR/$RIG_VERDICT_FILE"
    exit 0
}
fail() {
    [ -s "$RIG_DIR/$RIG_VERDICT_FILE" ] && exit 1
    log "$RIG_VERDICT_FAIL$RIG_VERDICT_SEP$*"
    printf '%s\n' "$RIG_VERDICT_FAIL$RIG_VERDICT_SEP$*" > "$RIG_DIR/$RIG_VERDICT_FILE"
    exit 1
}
metric() {
    log "metric $1 = $2"
    printf '%s %s\n' "$1" "$2" >> "$RIG_DIR/$RIG_METRICS_FILE"
}

# --- domains ----------------------------------------------------------------

domid() { xl domid "$1" 2>/dev/null || fail "no domain named $1"; }
dompath() { echo "/local/domain/$(domid "$1")"; }

# Why NAME shut down, from xl's per-domain log ("" if it has not).
_shutdown_reason() {
    local code
    code=$(sed -n 's/.*has shut down, reason code \([0-9]*\).*/\1/p' \
        "/var/log/xen/xl-$1.log" 2>/dev/null | tail -1)
    case $code in
        "") ;;
        0) echo poweroff ;;
        1) echo "reboot (a triple fault?)" ;;
        2) echo suspend ;;
        3) echo crash ;;
        4) echo watchdog ;;
        *) echo "reason code $code" ;;
    esac
}

# "<reason>, state <letters>" for a guest that stopped running.
_why_stopped() {
    local r st
    r=$(_shutdown_reason "$1")
    st=$(_state "$1")
    if [ -z "$r" ]; then
        case $st in *c*) r=crash ;; *) r="no reason logged" ;; esac
    fi
    echo "$r, state $st"
}

# State letters of NAME from `xl list` (e.g. -b----, --p---, ---sc-), or "gone".
_state() {
    local s
    s=$(xl list "$1" 2>/dev/null | awk 'NR == 2 {print $5}') || true
    echo "${s:-gone}"
}

# Memory of NAME in MiB as `xl list` shows it.
mem_of() { xl list "$1" 2>/dev/null | awk 'NR == 2 {print $3}'; }
free_mib() { xl info free_memory; }

# create_guest CFG [key=value...]: CFG is a name in xen-config/ (with or
# without .cfg) or a path. The rig's kernels replace the config's paths.
create_guest() {
    local cfg=$1 file name="" a k v args=()
    shift
    case $cfg in
        */*) file=$cfg ;;
        *) file=$RIG_DIR/cfg/${cfg%.cfg}.cfg ;;
    esac
    [ -f "$file" ] || fail "create_guest: no config $file"
    case $(basename "$file") in
        linux-pv*)
            args+=("kernel=\"$RIG_IMG/vmlinuz\"" "ramdisk=\"$RIG_IMG/linux-guest.cpio.gz\"") ;;
        *)
            [ -f "$RIG_DIR/selfballoon" ] \
                || fail "create_guest: no selfballoon kernel in the run dir (did the build fail?)"
            args+=("kernel=\"$RIG_DIR/selfballoon\"") ;;
    esac
    # A triple fault shows as a reboot (Xen's default reason for HVM/PVH);
    # keep such a guest (and a crashed one) for the logs instead of letting
    # it vanish. rig_run destroys what is left at the end.
    args+=('on_reboot="preserve"' 'on_crash="preserve"')
    for a in "$@"; do
        case $a in
            *=*) ;;
            *) fail "create_guest: override '$a' is not key=value" ;;
        esac
        k=${a%%=*}
        v=${a#*=}
        v=${v#\"}
        v=${v%\"}
        case $k in
            # Numbers stay bare; everything else is an xl string.
            memory | maxmem | vcpus | maxvcpus | shadow_memory) args+=("$k=$v") ;;
            *) args+=("$k=\"$v\"") ;;
        esac
        [ "$k" = name ] && name=$v
    done
    if [ -z "$name" ]; then
        name=$(sed -n 's/^[[:space:]]*name[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$file" | head -1)
    fi
    step "xl create $(basename "$file") $*"
    if ! xl create "$file" "${args[@]}" > "$RIG_DIR/xl-create-$name.log" 2>&1; then
        tail -8 "$RIG_DIR/xl-create-$name.log" | while IFS= read -r a; do log "  $a"; done
        fail "xl create $(basename "$file") failed (xl-create-$name.log)"
    fi
    log "created $name, domid $(xl domid "$name" 2>/dev/null || echo '?')"
}

destroy() {
    if xl domid "$1" >/dev/null 2>&1; then
        log "xl destroy $1"
        xl destroy "$1" || true
    fi
}

console_lines() {
    local f=$RIG_DIR/console/guest-$1.log
    if [ -f "$f" ]; then wc -l < "$f"; else echo 0; fi
}

# wait_console NAME REGEX [TIMEOUT=60] [FROM_LINE=0]: waits for an
# extended regex in NAME's console log (after line FROM_LINE); prints the
# first matching line. Fails on timeout or if NAME crashes or vanishes.
wait_console() {
    local name=$1 re=$2 timeout=${3:-60} from=${4:-0}
    local f=$RIG_DIR/console/guest-$1.log end line st
    step "wait for /$re/ on $name's console (<= ${timeout}s)"
    end=$(( $(_now_ms) + timeout * 1000 ))
    while :; do
        if [ -f "$f" ] && line=$(tail -n +$((from + 1)) "$f" | grep -a -E -m1 -- "$re"); then
            printf '%s\n' "$line" | tr -d '\r'
            return 0
        fi
        st=$(_state "$name")
        case $st in
            gone | *c* | *s*)
                # Give xenconsoled a moment to write the last output.
                sleep 1
                if [ -f "$f" ] && line=$(tail -n +$((from + 1)) "$f" | grep -a -E -m1 -- "$re"); then
                    printf '%s\n' "$line" | tr -d '\r'
                    return 0
                fi
                fail "$name stopped ($(_why_stopped "$name")) while waiting for /$re/"
                ;;
        esac
        [ "$(_now_ms)" -lt "$end" ] || fail "timeout (${timeout}s) waiting for /$re/ on $name's console"
        sleep 0.5
    done
}

# expect_selftest_success NAME [TIMEOUT=90]: waits for NAME's selftest
# result line; anything but SUCCESS fails the scenario, quoting the line.
expect_selftest_success() {
    local name=$1 timeout=${2:-90} line
    line=$(wait_console "$name" "$RIG_RESULT_PREFIX" "$timeout")
    log "$name says: $line"
    case $line in
        *"$RIG_RESULT_PREFIX$RIG_RESULT_SUCCESS"*) ;;
        *) fail "$name's selftest: ${line#*] }" ;;
    esac
}

# wait_dmesg REGEX [TIMEOUT=60]: a line in Xen's log (guests' port 0xe9).
wait_dmesg() {
    local re=$1 timeout=${2:-60} end line
    step "wait for /$re/ in xl dmesg (<= ${timeout}s)"
    end=$(( $(_now_ms) + timeout * 1000 ))
    until line=$(xl dmesg | grep -a -E -m1 -- "$re"); do
        [ "$(_now_ms)" -lt "$end" ] || fail "timeout (${timeout}s) waiting for /$re/ in xl dmesg"
        sleep 0.5
    done
    printf '%s\n' "$line"
}

# wait_shutdown NAME [TIMEOUT=60]: waits until NAME has shut down and
# prints the reason: poweroff, reboot, suspend, crash, watchdog,
# soft_reset, or "destroyed" (gone without a logged reason). xl's daemon
# for the domain logs the reason in /var/log/xen/xl-NAME.log.
wait_shutdown() {
    local name=$1 timeout=${2:-60} end code st
    local xllog=/var/log/xen/xl-$name.log
    step "wait for $name to shut down (<= ${timeout}s)"
    end=$(( $(_now_ms) + timeout * 1000 ))
    while :; do
        code=$(sed -n 's/.*has shut down, reason code \([0-9]*\).*/\1/p' "$xllog" 2>/dev/null | tail -1)
        st=$(_state "$name")
        if [ -z "$code" ]; then
            case $st in *c*) code=3 ;; esac
        fi
        if [ -n "$code" ]; then
            case $code in
                0) echo poweroff ;; 1) echo reboot ;; 2) echo suspend ;;
                3) echo crash ;; 4) echo watchdog ;; 5) echo soft_reset ;;
                *) echo "reason-$code" ;;
            esac
            return 0
        fi
        if [ "$st" = gone ]; then
            echo destroyed
            return 0
        fi
        [ "$(_now_ms)" -lt "$end" ] || fail "timeout (${timeout}s) waiting for $name to shut down"
        sleep 0.5
    done
}

# assert_alive NAME [WHAT]: fails unless NAME exists and has neither
# crashed nor shut down (a preserved triple fault shows as shut down).
assert_alive() {
    local st
    st=$(_state "$1")
    case $st in
        gone) fail "${2:-$1} did not survive: the domain is gone" ;;
        *s* | *c*) fail "${2:-$1} did not survive: stopped ($(_why_stopped "$1"))" ;;
    esac
}

wait_gone() {
    local name=$1 timeout=${2:-60} end
    end=$(( $(_now_ms) + timeout * 1000 ))
    while xl domid "$name" >/dev/null 2>&1; do
        [ "$(_now_ms)" -lt "$end" ] || fail "timeout (${timeout}s) waiting for $name to go away"
        sleep 0.5
    done
}

# console_follow NAME: streams NAME's console log to the runner's terminal
# (as "[rig] NAME| line") in the background until the scenario ends.
console_follow() {
    local f=$RIG_DIR/console/guest-$1.log name=$1
    (
        trap - ERR
        set +e
        until [ -f "$f" ]; do sleep 0.5; done
        tail -n +1 -F "$f" 2>/dev/null | while IFS= read -r l; do
            log "$name| ${l%$'\r'}"
        done
    ) &
    echo $! >> "$RIG_SAMPLERS"
}

show_domains() {
    local l
    xl list | while IFS= read -r l; do log "  $l"; done
    log "  host free memory: $(xl info free_memory) MiB"
}

mem_set() {
    step "xl mem-set $1 ${2}m"
    xl mem-set "$1" "${2}m" || fail "xl mem-set $1 ${2}m failed"
}

# wait_mem NAME le|ge MIB [TIMEOUT=60]: polls `xl list` every 0.1 s until
# NAME's memory is <= / >= MIB; prints the seconds it took.
wait_mem() {
    local name=$1 op=$2 want=$3 timeout=${4:-60} t0 m
    t0=$(_now_us)
    case $op in le | ge) ;; *) fail "wait_mem: op must be le or ge, not $op" ;; esac
    while :; do
        m=$(mem_of "$name")
        [ -n "$m" ] || fail "wait_mem: $name is gone ($(_why_stopped "$name"))"
        case $(_state "$name") in
            *s* | *c*) fail "wait_mem: $name stopped ($(_why_stopped "$name"))" ;;
        esac
        if [ "$op" = le ] && [ "$m" -le "$want" ]; then break; fi
        if [ "$op" = ge ] && [ "$m" -ge "$want" ]; then break; fi
        if [ $(( ($(_now_us) - t0) / 1000000 )) -ge "$timeout" ]; then
            fail "timeout (${timeout}s): $name has $m MiB, want $op $want"
        fi
        sleep 0.1
    done
    _secs "$t0" "$(_now_us)"
}

# --- xenstore ---------------------------------------------------------------

xs_read() { xenstore-read "$1"; }
xs_write() {
    log "xenstore-write $1 $2"
    xenstore-write "$1" "$2"
}
xs_ls() { xenstore-ls "$1"; }
xs_rm() { xenstore-rm "$1"; }
xs_exists() { xenstore-exists "$1" 2>/dev/null; }
xs_wait() {
    local path=$1 re=$2 timeout=${3:-60} end v=""
    step "wait for $path =~ /$re/ (<= ${timeout}s)"
    end=$(( $(_now_ms) + timeout * 1000 ))
    while :; do
        v=$(xenstore-read "$path" 2>/dev/null) || v=""
        if printf '%s' "$v" | grep -qE -- "$re"; then
            printf '%s\n' "$v"
            return 0
        fi
        [ "$(_now_ms)" -lt "$end" ] || fail "timeout (${timeout}s) waiting for $path =~ /$re/ (is '$v')"
        sleep 0.5
    done
}

# --- sampling ---------------------------------------------------------------

# sample_start CSV DOM... [KEY...]: writes a row every RIG_SAMPLE_INTERVAL
# seconds (default 1) to CSV (relative to the run dir): t (s since start),
# free_mib, per domain <dom>.mem_mib and <dom>.target_kib, then each KEY:
# keys with a leading / are read as they are, others under each domain's
# /local/domain/<id>/. An argument with a / is a key, else a domain name.
sample_start() {
    local csv=$1 a doms=() keys=()
    shift
    for a in "$@"; do
        case $a in */*) keys+=("$a") ;; *) doms+=("$a") ;; esac
    done
    case $csv in /*) ;; *) csv=$RIG_DIR/$csv ;; esac
    _sampler "$csv" "${#doms[@]}" "${doms[@]}" "${keys[@]}" &
    echo $! >> "$RIG_SAMPLERS"
    log "sampling ${doms[*]} ${keys[*]} into $(basename "$csv")"
}

_sampler() {
    trap - ERR
    set +e
    local csv=$1 n=$2 d k hdr row t0 next id list interval
    shift 2
    local doms=("${@:1:n}") keys=("${@:n+1}")
    interval=$(awk -v i="${RIG_SAMPLE_INTERVAL:-1}" 'BEGIN {printf "%d", i * 1000000}')
    hdr="t,free_mib"
    for d in "${doms[@]}"; do
        hdr+=",$d.mem_mib,$d.target_kib"
        for k in "${keys[@]}"; do
            case $k in /*) ;; *) hdr+=",$d.$k" ;; esac
        done
    done
    for k in "${keys[@]}"; do
        case $k in /*) hdr+=",$k" ;; esac
    done
    echo "$hdr" > "$csv"
    t0=$(_now_us)
    next=$t0
    local -A ids mems
    local paths vals nm i m rest v
    while :; do
        # Few forks per row (each costs tens of ms in the emulated dom0,
        # and a row of many domains must still fit its interval): `xl
        # list` once, parsed here, and one xenstore-read for every path.
        list=$(xl list 2>/dev/null)
        ids=() mems=()
        # Columns of `xl list`: Name ID Mem VCPUs State Time.
        while read -r nm i m rest; do
            [ "$nm" = Name ] && continue
            ids[$nm]=$i
            mems[$nm]=$m
        done <<< "$list"
        paths=()
        for d in "${doms[@]}"; do
            id=${ids[$d]:-}
            [ -n "$id" ] || continue
            paths+=("/local/domain/$id/memory/target")
            for k in "${keys[@]}"; do
                case $k in /*) ;; *) paths+=("/local/domain/$id/$k") ;; esac
            done
        done
        for k in "${keys[@]}"; do
            case $k in /*) paths+=("$k") ;; esac
        done
        vals=()
        if [ ${#paths[@]} -gt 0 ]; then
            mapfile -t vals < <(xenstore-read "${paths[@]}" 2>/dev/null)
            # A missing key fails the whole read, and a value with a
            # newline shifts the lines: then one read per path.
            if [ ${#vals[@]} -ne ${#paths[@]} ]; then
                vals=()
                for k in "${paths[@]}"; do
                    v=$(xenstore-read "$k" 2>/dev/null)
                    vals+=("${v//$'\n'/ }")
                done
            fi
        fi
        row="$(_secs "$t0" "$(_now_us)"),$(xl info free_memory 2>/dev/null)"
        i=0
        for d in "${doms[@]}"; do
            id=${ids[$d]:-}
            if [ -n "$id" ]; then
                row+=",${mems[$d]},${vals[$i]//,/}"
                i=$((i + 1))
            else
                row+=",,"
            fi
            for k in "${keys[@]}"; do
                case $k in
                    /*) ;;
                    *) if [ -n "$id" ]; then
                           row+=",${vals[$i]//,/}"
                           i=$((i + 1))
                       else
                           row+=","
                       fi ;;
                esac
            done
        done
        for k in "${keys[@]}"; do
            case $k in /*) row+=",${vals[$i]//,/}"; i=$((i + 1)) ;; esac
        done
        echo "$row" >> "$csv"
        next=$((next + interval))
        local now wait
        now=$(_now_us)
        wait=$((next - now))
        if [ $wait -gt 0 ]; then
            sleep "$(_secs 0 "$wait")"
        else
            next=$now
        fi
    done
}

sample_stop() {
    local p
    [ -f "$RIG_SAMPLERS" ] || return 0
    while read -r p; do
        # The whole process group of a helper (e.g. tail | while read).
        pkill -P "$p" 2>/dev/null || true
        kill "$p" 2>/dev/null || true
    done < "$RIG_SAMPLERS"
    rm -f "$RIG_SAMPLERS"
    sleep 0.2
}

# --- assertions and CSV -----------------------------------------------------

assert_eq() { [ "$1" = "$2" ] || fail "${3:-assert_eq}: got '$1', want '$2'"; }
assert_match() {
    printf '%s' "$1" | grep -qE -- "$2" || fail "${3:-assert_match}: '$1' does not match /$2/"
}
_cmp() { awk -v a="$1" -v b="$3" "BEGIN { exit !((a + 0) $2 (b + 0)) }"; }
assert_le() { _cmp "$1" '<=' "$2" || fail "${3:-assert_le}: $1 > $2"; }
assert_ge() { _cmp "$1" '>=' "$2" || fail "${3:-assert_ge}: $1 < $2"; }

# csv_min/csv_max/csv_last CSV COLUMN: over the non-empty cells.
_csv_col() {
    local csv=$1
    case $csv in /*) ;; *) csv=$RIG_DIR/$csv ;; esac
    awk -F, -v c="$2" -v mode="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) col = i; if (!col) exit 2; next }
        $col != "" { v = $col + 0; n++
            if (n == 1 || v < min) min = v; if (n == 1 || v > max) max = v; last = v }
        END { if (!n) exit 3
              if (mode == "min") print min; else if (mode == "max") print max; else print last }' "$csv" \
        || fail "no values in column $2 of $(basename "$csv")"
}
csv_min() { _csv_col "$1" "$2" min; }
csv_max() { _csv_col "$1" "$2" max; }
csv_last() { _csv_col "$1" "$2" last; }

# --- the run ----------------------------------------------------------------

_on_err() { fail "command failed (line $1, exit $2): $3"; }

# post_mortem crashed|all: evidence from guests that crashed (or from all
# guests, after a failure) before they are destroyed: vCPU state with our
# kernel's symbols, HVM context, the guest's xenstore subtree, and (for
# running guests) the state dump our kernel logs on VIRQ_DEBUG, which the
# 'q' debug key raises. The key facts go to the log; the rest to files.
post_mortem() {
    local which=$1 d id st map="" rip p
    [ -f "$RIG_DIR/selfballoon.map" ] && map="-s $RIG_DIR/selfballoon.map"
    # Only a running guest can answer the key.
    if [ "$which" = all ] && xl list 2>/dev/null | awk 'NR > 2 && $5 !~ /[sc]/' | grep -q .; then
        xl debug-keys q 2>/dev/null || true
        sleep 2
    fi
    for d in $(xl list 2>/dev/null | awk -v w="$which" \
        'NR > 2 && (w == "all" || $5 ~ /[sc]/) {print $1}'); do
        id=$(xl domid "$d" 2>/dev/null) || continue
        st=$(_state "$d")
        # shellcheck disable=SC2086 # $map is an option and its argument
        /usr/lib/xen-4.17/bin/xenctx -a -S $map "$id" > "$RIG_DIR/xenctx-$d.txt" 2>&1 || true
        xen-hvmctx "$id" > "$RIG_DIR/hvmctx-$d.txt" 2>&1 || true
        xenstore-ls -fp "/local/domain/$id" > "$RIG_DIR/xenstore-$d.txt" 2>&1 || true
        rip=$(_ctx_reg "$RIG_DIR/xenctx-$d.txt" rip)
        p=/local/domain/$id
        log "post-mortem of $d (domid $id, state $st, $(mem_of "$d") MiB): rip ${rip:-?} $(_symbol "$rip")"
        log "  memory/target $(xenstore-read "$p/memory/target" 2>/dev/null || echo -)," \
            "data/selfballoon: current $(xenstore-read "$p/data/selfballoon/current" 2>/dev/null || echo -)" \
            "target $(xenstore-read "$p/data/selfballoon/target" 2>/dev/null || echo -)" \
            "toolstack_target $(xenstore-read "$p/data/selfballoon/toolstack_target" 2>/dev/null || echo -)"
        log "  files: xenctx-$d.txt hvmctx-$d.txt xenstore-$d.txt"
        _emulator_fault_check "$d" "$st" "$rip"
    done
}

# _ctx_reg FILE REG: register REG's hex value in xenctx output FILE.
_ctx_reg() { sed -n "s/^ *$2: *\([0-9a-f]*\).*/\1/p" "$1" | head -1; }

# _symbol HEX: the kernel function containing address HEX (from the
# `nm -n` map xtask puts next to the kernel), or nothing.
_symbol() {
    local map=$RIG_DIR/selfballoon.map a t n best=""
    local h
    h=$(printf '%s' "$1" | sed 's/^0*//')
    # Our kernel runs below 4 GiB: at most 8 significant hex digits.
    [ -n "$h" ] && [ ${#h} -le 8 ] || return 0
    [ -f "$map" ] || return 0
    local want=$((16#$h)) at=0
    # No command substitution in the loop: each one forks, which in the
    # emulated dom0 costs enough to time out a failing scenario's
    # post-mortem (about 300 text symbols lie below a typical RIP).
    while read -r a t n; do
        [ $((16#$a)) -le "$want" ] || break
        case $t in [tT]) best=$n at=$((16#$a)) ;; esac
    done < "$map"
    if [ -n "$best" ]; then
        printf '(%s+0x%x)\n' "$best" $((want - at))
    else
        echo
    fi
}

# A stopped guest whose saved vCPU state holds the hypervisor's own
# registers (code selector 0xe008, Xen's; our kernel only ever runs with
# its selector 0x08 at addresses below 4 GiB) did not fault by itself:
# the emulated SVM of QEMU TCG switched between Xen's and the guest's
# state wrongly (seen as a triple fault at a Xen address, cr2 = rip).
# Recorded in emulator-fault; `cargo xtask nested` runs the scenario once
# more in that case and reports both runs.
_emulator_fault_check() {
    local d=$1 st=$2 rip=$3 cs
    case $st in *s* | *c*) ;; *) return 0 ;; esac
    cs=$(_ctx_reg "$RIG_DIR/xenctx-$d.txt" cs)
    if [ "$cs" = e008 ]; then
        echo "$d${RIG_EMULATOR_FAULT_SEP}saved vCPU state is Xen's own (cs $cs, rip $rip): emulated SVM fault in QEMU TCG, not a guest fault" \
            >> "$RIG_DIR/$RIG_EMULATOR_FAULT_FILE"
        log "  EMULATOR FAULT: $d's saved state is Xen's own (cs $cs, rip $rip), not the guest's"
    fi
}

# rig_run SCENARIO: runs the scenario in a subshell, then collects logs,
# tears guests down and returns 0 only on PASS.
rig_run() {
    local scen=$1 rc verdict d id
    rm -f "$RIG_DIR/$RIG_VERDICT_FILE" "$RIG_SAMPLERS"
    exec 9>&1
    RIG_LOG_FD=9
    log "scenario ${RIG_SCENARIO:-?}: start (xen $(xl info xen_version), free $(xl info free_memory) MiB)"
    (
        set -eE -o pipefail
        trap '_on_err "$LINENO" "$?" "$BASH_COMMAND"' ERR
        # shellcheck source=/dev/null
        . "$scen"
    )
    rc=$?
    sample_stop
    if [ ! -s "$RIG_DIR/$RIG_VERDICT_FILE" ]; then
        if [ $rc = 0 ]; then
            printf '%s\n' "$RIG_VERDICT_PASS" > "$RIG_DIR/$RIG_VERDICT_FILE"
        else
            printf '%s\n' "$RIG_VERDICT_FAIL${RIG_VERDICT_SEP}scenario exited $rc (step: $(cat "$RIG_DIR/.step" 2>/dev/null))" \
                > "$RIG_DIR/$RIG_VERDICT_FILE"
        fi
    fi
    verdict=$(head -1 "$RIG_DIR/$RIG_VERDICT_FILE")
    # Evidence for the result folder.
    xl list > "$RIG_DIR/xl-list-end.txt" 2>&1 || true
    # A guest that crashed or triple-faulted is preserved (on_crash and
    # on_reboot): keep its vCPU state for the post-mortem. After a failure
    # every guest still there gets one.
    case $verdict in "$RIG_VERDICT_PASS"*) post_mortem crashed ;; *) post_mortem all ;; esac
    for d in $(xl list 2>/dev/null | awk 'NR > 2 {print $1}'); do
        xl destroy "$d" 2>/dev/null || true
    done
    sleep 1
    xl dmesg > "$RIG_DIR/xl-dmesg.log" 2>&1 || true
    mkdir -p "$RIG_DIR/xl"
    cp /var/log/xen/xl-*.log "$RIG_DIR/xl/" 2>/dev/null || true
    sync
    log "verdict: $verdict"
    case $verdict in "$RIG_VERDICT_PASS"*) return 0 ;; *) return 1 ;; esac
}

# Scenario ctl: selfballoonctl, the dom0 tool, against real xenstored and
# a running guest of ours (the tool is built for the host and copied into
# the run directory by `cargo xtask nested`; dom0's glibc is bookworm's).
# Checks:
#  - `status` lists the guest (name, domid, its mode) and Domain-0, over
#    xenstored's socket and over /dev/xen/xenbus;
#  - `get` reads a tunable as the guest publishes it;
#  - `set` writes a tunable and the guest applies it (its published value
#    changes), also `mode`, which the table then shows;
#  - a rejected value is refused with the guest's own reason (the same the
#    guest publishes for that value written behind the tool's back) and
#    nothing is written; exit code 5;
#  - unknown domain (3), unknown key (4), no value (9), no xenstore (6);
#  - `--json` output parses (a strict JSON parser in awk below) and holds
#    the guest's values; `export` is valid Prometheus text (checked below)
#    with the guest's samples; `export -o` writes the file;
#  - `top --iterations` draws its frames.
# timeout: 600

ctl_bin=$RIG_DIR/selfballoonctl
[ -x "$ctl_bin" ] || fail "no selfballoonctl in the run directory (cargo xtask nested copies it from target/)"
ctl() { "$ctl_bin" "$@"; }

# ctl_rc WANT CMD...: runs the tool, expects exit code WANT; its stderr
# goes to $RIG_DIR/ctl-stderr.txt, stdout to ctl-stdout.txt.
ctl_rc() {
    local want=$1 rc=0
    shift
    "$ctl_bin" "$@" > "$RIG_DIR/ctl-stdout.txt" 2> "$RIG_DIR/ctl-stderr.txt" || rc=$?
    log "selfballoonctl $* -> exit $rc: $(head -c 300 "$RIG_DIR/ctl-stderr.txt")"
    [ "$rc" = "$want" ] || fail "selfballoonctl $*: exit $rc, want $want"
}

# json_flat < JSON: prints "path<TAB>scalar" for every scalar (strings
# with their escapes as written), exits 1 on anything that is not JSON
# (RFC 8259: one value, strings with valid escapes and no raw control
# characters, numbers in JSON's form, nothing after the value).
json_flat() {
    LC_ALL=C awk '
    function err(m) { printf "json: %s at byte %d\n", m, pos > "/dev/stderr"; failed = 1; exit 1 }
    function ws() { while (pos <= n && index(" \t\r\n", substr(s, pos, 1)) > 0) pos++ }
    function str(   out, c, d) {
        pos++; out = ""
        for (;;) {
            if (pos > n) err("unterminated string")
            c = substr(s, pos, 1)
            if (c == "\"") { pos++; return out }
            if (c == "\\") {
                d = substr(s, pos + 1, 1)
                if (index("\"\\/bfnrt", d) > 0) { out = out c d; pos += 2; continue }
                if (d == "u" && substr(s, pos + 2, 4) ~ /^[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]$/) {
                    out = out substr(s, pos, 6); pos += 6; continue
                }
                err("bad escape")
            }
            if (c < " ") err("control character in string")
            out = out c; pos++
        }
    }
    function value(path,   c, i, k) {
        ws()
        if (pos > n) err("value expected")
        c = substr(s, pos, 1)
        if (c == "{") {
            pos++; ws()
            if (substr(s, pos, 1) == "}") { pos++; return }
            for (;;) {
                ws()
                if (substr(s, pos, 1) != "\"") err("key expected")
                k = str(); ws()
                if (substr(s, pos, 1) != ":") err("colon expected")
                pos++
                value(path (path == "" ? "" : ".") k)
                ws(); c = substr(s, pos, 1); pos++
                if (c == "}") return
                if (c != ",") err("comma or } expected")
            }
        }
        if (c == "[") {
            pos++; ws()
            if (substr(s, pos, 1) == "]") { pos++; return }
            for (i = 0; ; i++) {
                value(path "." i)
                ws(); c = substr(s, pos, 1); pos++
                if (c == "]") return
                if (c != ",") err("comma or ] expected")
            }
        }
        if (c == "\"") { print path "\t" str(); return }
        if (substr(s, pos, 4) == "true" || substr(s, pos, 4) == "null") { print path "\t" substr(s, pos, 4); pos += 4; return }
        if (substr(s, pos, 5) == "false") { print path "\tfalse"; pos += 5; return }
        if (match(substr(s, pos), /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/)) {
            print path "\t" substr(s, pos, RLENGTH); pos += RLENGTH; return
        }
        err("unexpected character")
    }
    { s = s $0 "\n" }
    END {
        if (failed) exit 1
        n = length(s); pos = 1
        value("")
        ws()
        if (pos <= n) err("text after the value")
    }'
}

# prom_check < TEXT: exits 1 unless TEXT is valid Prometheus text
# exposition (0.0.4): HELP/TYPE lines with valid names and types, one TYPE
# per family before its samples, samples with valid names, labels (escaped
# values) and a float value, families not interleaved.
prom_check() {
    LC_ALL=C awk '
    function err(m) { printf "prometheus: line %d: %s: %s\n", NR, m, $0 > "/dev/stderr"; bad = 1; exit 1 }
    BEGIN { types["counter"]; types["gauge"]; types["histogram"]; types["summary"]; types["untyped"] }
    /^# HELP / { if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) err("bad name"); next }
    /^# TYPE / {
        if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/ || NF != 4 || !($4 in types)) err("bad TYPE")
        if ($3 in typed) err("second TYPE"); if ($3 in sampled) err("TYPE after samples")
        typed[$3] = 1; next
    }
    /^#/ || /^$/ { next }
    {
        line = $0
        if (!match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) err("bad metric name")
        name = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1)
        if (substr(rest, 1, 1) == "{") {
            rest = substr(rest, 2)
            while (substr(rest, 1, 1) != "}") {
                if (!match(rest, /^[a-zA-Z_][a-zA-Z0-9_]*="/)) err("bad label")
                rest = substr(rest, RLENGTH + 1)
                for (;;) {
                    c = substr(rest, 1, 1)
                    if (c == "") err("unterminated label value")
                    if (c == "\"") { rest = substr(rest, 2); break }
                    if (c == "\\") {
                        if (index("\\\"n", substr(rest, 2, 1)) == 0) err("bad escape in label value")
                        rest = substr(rest, 3); continue
                    }
                    rest = substr(rest, 2)
                }
                if (substr(rest, 1, 1) == ",") rest = substr(rest, 2)
                else if (substr(rest, 1, 1) != "}") err("comma or } expected")
            }
            rest = substr(rest, 2)
        }
        if (rest !~ /^ ([-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[-+]Inf)( -?[0-9]+)?$/) err("bad value")
        if (!(name in typed)) err("sample without TYPE")
        if (name != last && (name in sampled)) err("family interleaved")
        sampled[name] = 1; last = name; samples++
    }
    END { if (bad) exit 1; if (samples == 0) { print "prometheus: no samples" > "/dev/stderr"; exit 1 } }'
}

step "selfballoonctl runs on dom0"
log "$(ctl --version) ($(ldd "$ctl_bin" 2>/dev/null | awk '/libc.so/ {print $3}'))"

create_guest selfballoon name=ctl memory=256 maxmem=256 extra="loglevel=info"
console_follow ctl
wait_console ctl "$RIG_MARK_RUNTIME" 120 > /dev/null
id=$(domid ctl)
p=$(dompath ctl)
ds=$p/data/selfballoon
xs_wait "$ds/mode" '^linux$' 60 > /dev/null
xs_wait "$ds/current" '^[0-9]+$' 60 > /dev/null

# --- status ---------------------------------------------------------------------
step "status lists the guest"
ctl status > "$RIG_DIR/ctl-status.txt"
while IFS= read -r l; do log "  $l"; done < "$RIG_DIR/ctl-status.txt"
head -1 "$RIG_DIR/ctl-status.txt" | grep -qE '^NAME +DOMID +CURRENT +TARGET +GOAL +COMMITTED +FRONTSWAP +MODE +BACKEND$' \
    || fail "status: no header"
row=$(awk -v id="$id" '$1 == "ctl" && $2 == id' "$RIG_DIR/ctl-status.txt")
[ -n "$row" ] || fail "status does not list ctl (domid $id)"
assert_eq "$(echo "$row" | awk '{print $8}')" linux "status: mode of ctl"
assert_match "$(echo "$row" | awk '{print $3}')" '^[0-9]+\.[0-9]M$' "status: current of ctl"
awk '$1 == "Domain-0" && $2 == 0' "$RIG_DIR/ctl-status.txt" | grep -q . || fail "status does not list Domain-0"

step "status over /dev/xen/xenbus"
ctl --socket /dev/xen/xenbus status > "$RIG_DIR/ctl-status-xenbus.txt"
awk -v id="$id" '$1 == "ctl" && $2 == id' "$RIG_DIR/ctl-status-xenbus.txt" | grep -q . \
    || fail "status over /dev/xen/xenbus does not list ctl"

# --- get / set ------------------------------------------------------------------
step "get reads a tunable"
assert_eq "$(ctl get ctl selfballoon_interval)" "$(xs_read "$ds/selfballoon_interval")" "get ctl selfballoon_interval"
assert_eq "$(ctl get "$id" mode)" linux "get $id mode"
assert_eq "$(ctl get ctl memory/target)" "$(xs_read "$p/memory/target")" "get ctl memory/target"

step "set writes a tunable and the guest applies it"
ctl set ctl selfballoon_interval 3 | while IFS= read -r l; do log "  $l"; done
assert_eq "$(xs_read "$p/memory/selfballoon/selfballoon_interval")" 3 "written value"
xs_wait "$ds/selfballoon_interval" '^3$' 30 > /dev/null
assert_eq "$(ctl get ctl selfballoon_interval)" 3 "get after set"
ctl set "$id" mode 2011 > /dev/null
xs_wait "$ds/mode" '^2011$' 30 > /dev/null
assert_eq "$(ctl status | awk -v id="$id" '$2 == id {print $8}')" 2011 "status shows the new mode"

step "rejected values are refused with the guest's reason, nothing written"
before=$(xs_read "$p/memory/selfballoon/selfballoon_interval")
rej_before=$(xs_read "$ds/last_rejection_value" 2>/dev/null || echo none)
for bad in 0 -1 abc 1180591620717411303424 ' 5'; do
    ctl_rc 5 set ctl selfballoon_interval "$bad"
    grep -q "refused by the guest's parser" "$RIG_DIR/ctl-stderr.txt" || fail "no reason for '$bad'"
    assert_eq "$(xs_read "$p/memory/selfballoon/selfballoon_interval")" "$before" "value after refusing '$bad'"
done
ctl_rc 5 set ctl mode Linux
ctl_rc 5 set ctl selfballooning 2
ctl_rc 5 set ctl memory/target 12k
sleep 3
assert_eq "$(xs_read "$ds/last_rejection_value" 2>/dev/null || echo none)" "$rej_before" \
    "the guest saw no refused value"
# The same value behind the tool's back: the guest's reason is the tool's.
for bad in 0 abc 1180591620717411303424; do
    ctl_rc 5 set ctl selfballoon_downhysteresis "$bad"
    ours=$(sed -n "s/.*refused by the guest's parser: \([a-z-]*\); nothing written.*/\1/p" "$RIG_DIR/ctl-stderr.txt")
    xs_write "$p/memory/selfballoon/selfballoon_downhysteresis" "$bad"
    xs_wait "$ds/last_rejection_value" "^$bad\$" 30 > /dev/null
    guests=$(xs_read "$ds/last_rejection_reason")
    log "'$bad': tool says '$ours', guest says '$guests'"
    assert_eq "$ours" "$guests" "reason for '$bad'"
done
ctl set ctl selfballoon_downhysteresis 8 > /dev/null

step "errors: unknown domain, unknown key, no value, no xenstore"
ctl_rc 3 get nosuchdomain mode
grep -q "unknown domain 'nosuchdomain'" "$RIG_DIR/ctl-stderr.txt" || fail "unknown domain message"
ctl_rc 3 set 31999 mode linux
ctl_rc 4 get ctl nosuchkey
grep -q "unknown key 'nosuchkey'" "$RIG_DIR/ctl-stderr.txt" || fail "unknown key message"
ctl_rc 4 set ctl nosuchkey 1
ctl_rc 9 get ctl memory/workload
ctl_rc 6 --socket /run/nonexistent/socket status
grep -q "no xenstore: /run/nonexistent/socket" "$RIG_DIR/ctl-stderr.txt" || fail "no xenstore message"
ctl_rc 2 set ctl mode

# --- JSON, Prometheus, top --------------------------------------------------------
step "--json parses"
ctl --json status > "$RIG_DIR/ctl-status.json"
json_flat < "$RIG_DIR/ctl-status.json" > "$RIG_DIR/ctl-status.flat" || fail "status --json is not JSON"
idx=$(awk -F'\t' -v id="$id" '$1 ~ /^domains\.[0-9]+\.domid$/ && $2 == id { split($1, a, "."); print a[2] }' "$RIG_DIR/ctl-status.flat")
[ -n "$idx" ] || fail "status --json lacks domid $id"
jget() { awk -F'\t' -v k="domains.$idx.$1" '$1 == k { print $2 }' "$RIG_DIR/ctl-status.flat"; }
assert_eq "$(jget name)" ctl "json name"
assert_eq "$(jget mode)" 2011 "json mode"
assert_match "$(jget current_kib)" '^[0-9]+$' "json current_kib"
assert_eq "$(jget backend)" zpool "json backend"
assert_match "$(jget frontswap_kib)" '^[0-9]+$' "json frontswap_kib"
assert_eq "$(jget target_kib)" "$(xs_read "$p/memory/target")" "json target_kib"
ctl --json get ctl selfballoon_interval > "$RIG_DIR/ctl-get.json"
json_flat < "$RIG_DIR/ctl-get.json" > "$RIG_DIR/ctl-get.flat" || fail "get --json is not JSON"
assert_eq "$(awk -F'\t' '$1 == "in_force" {print $2}' "$RIG_DIR/ctl-get.flat")" 3 "get --json in_force"

step "export is valid Prometheus text"
ctl export > "$RIG_DIR/ctl-export.prom"
prom_check < "$RIG_DIR/ctl-export.prom" || fail "export is not valid Prometheus text"
grep -qE "^selfballoon_current_kib\{domain=\"ctl\",domid=\"$id\"\} [0-9]+$" "$RIG_DIR/ctl-export.prom" \
    || fail "export lacks selfballoon_current_kib of ctl"
grep -qE "^selfballoon_info\{domain=\"ctl\",domid=\"$id\",mode=\"2011\",backend=\"zpool\"\} 1$" "$RIG_DIR/ctl-export.prom" \
    || fail "export lacks selfballoon_info of ctl"
ctl export -o /tmp/selfballoon.prom
prom_check < /tmp/selfballoon.prom || fail "export -o wrote no valid file"

step "top draws its frames"
ctl top --interval 0.5 --iterations 3 > "$RIG_DIR/ctl-top.txt"
assert_eq "$(grep -c '^selfballoonctl top: ' "$RIG_DIR/ctl-top.txt")" 3 "top frames"
assert_eq "$(awk -v id="$id" '$1 == "ctl" && $2 == id' "$RIG_DIR/ctl-top.txt" | wc -l)" 3 "ctl rows in top"

assert_alive ctl "after the tool's work"
pass "status, get, set, refusals, errors, --json, export and top against xenstored"

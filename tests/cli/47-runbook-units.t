#!/usr/bin/env bash
# The systemd units of docs/systemd (docs/runbooks.md) name only tools we build and options
# those tools' --help lists, every timer has its service, and, where systemd-analyze is
# installed, the units verify (with our tools in place of /usr/local/bin).
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
units=$top/docs/systemd

ls "$units"/*.service >/dev/null 2>&1; ok $? "docs/systemd holds service units"
for timer in "$units"/*.timer; do
    [ -e "$timer" ] || continue
    ok "$([ -f "${timer%.timer}.service" ]; echo $?)" "$(basename "$timer") has its service"
done

# Each ExecStart= line, cut at && || | ; $( ) and quotes, gives commands; a command whose
# first word is one of our tools (bare or with a directory) is checked option by option.
checked=0
for unit in "$units"/*.service; do
    name=$(basename "$unit")
    while IFS= read -r cmd; do
        set -f
        # shellcheck disable=SC2086
        set -- $cmd
        set +f
        tool=${1##*/}
        case $1 in */*) case $1 in */bin/*) ;; *) continue ;; esac ;; esac
        case $tool in themis-?*|themisdb-?*) ;; *) continue ;; esac
        shift
        ok "$([ -x "$TB_BIN/$tool" ]; echo $?)" "$name: $tool is a tool we build"
        [ -x "$TB_BIN/$tool" ] || continue
        help=$("$TB_BIN/$tool" --help)
        missing=
        for word in "$@"; do
            case $word in --*) ;; *) continue ;; esac
            opt=${word%%=*}
            printf '%s' "$help" | grep -qE -- "(^|[ ,])$opt([^a-z0-9-]|\$)" || missing="$missing $opt"
        done
        is "$missing" "" "$name: $tool accepts every option the unit gives it"
        checked=$((checked + 1))
    done < <(sed -n 's/^ExecStart=[-@:+!]*//p' "$unit" |
             sed -e 's/&&/\n/g' -e 's/||/\n/g' -e 's/[|;]/\n/g' -e 's/\$\$(/\n/g' -e 's/[()]/\n/g' -e "s/['\"]//g" |
             sed -e 's/^[[:space:]]*//' -e 's/^exec //' -e 's/^[a-z_]*=//' | grep .)
done
ok "$([ "$checked" -ge 4 ]; echo $?)" "found our tools in the units ($checked commands checked)"

# systemd-analyze verify checks the syntax, the executables and the man pages it is
# pointed to; /usr/local/bin is where make install puts the tools, absent here.
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir "$T/units"
    for f in "$units"/*.service "$units"/*.timer; do
        sed "s|/usr/local/bin/|$TB_BIN/|g" "$f" >"$T/units/$(basename "$f")"
    done
    out=$(cd "$T/units" && systemd-analyze verify --man=no ./*.service ./*.timer 2>&1)
    st=$?
    is "$st:$out" "0:" "systemd-analyze verify accepts the units"
else
    skip "systemd-analyze is not installed"
fi
done_testing

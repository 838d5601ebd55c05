#!/usr/bin/env bash
# rgw.sh: a throwaway S3 server for the tests: a one-node Ceph cluster (one monitor, one
# memstore OSD, one radosgw) bound to 127.0.0.1, all state under one directory.
#   rgw.sh start DIR   start, wait until a signed request works, write DIR/env (AWS_* for the
#                      gateway, TB_S3_BUCKET, TB_RGW_PORTS: every port the daemons listen on).
#                      Exit 77: Ceph or awscli not installed; 1 with one line on stderr: not
#                      ready within TB_RGW_START_TIMEOUT (90) s, everything started is stopped.
#   rgw.sh stop DIR    kill every daemon started there, wait until they and their listeners
#                      are gone, empty DIR
set -euo pipefail

die() { echo "rgw.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until CMD...: polls CMD every 100 ms until it succeeds or $deadline (epoch s) passes.
wait_until() {
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# ours PID DIR: PID is still a daemon started with DIR's ceph.conf (not a reused pid).
ours() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "-c $2/ceph.conf"; }

# listening PID...: the TCP ports those processes listen on.
listening() {
    local pid
    for pid in "$@"; do
        ss -ltnpH 2>/dev/null | grep "pid=$pid," | awk '{ n = split($4, a, ":"); print a[n] }'
    done
}

# kill_daemons DIR: SIGKILL, not SIGTERM: the cluster lives in memory (memstore) and is
# thrown away, and radosgw alone takes 1-6 s over a clean shutdown. Waits until every
# daemon is gone and nothing listens on their ports.
kill_daemons() {
    local d=$1 f pid pids=() ports port deadline=$(( $(date +%s) + 20 ))
    [ -d "$d/pids" ] || return 0
    for f in "$d"/pids/*; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        ours "$pid" "$d" && pids+=("$pid")
    done
    ports=$(listening "${pids[@]+"${pids[@]}"}")
    for pid in "${pids[@]+"${pids[@]}"}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]+"${pids[@]}"}"; do
        until ! ours "$pid" "$d"; do
            [ "$(date +%s)" -lt "$deadline" ] || die "daemon $pid did not exit"
            sleep 0.05
        done
    done
    for port in $ports; do
        wait_until sh -c "! ss -ltnH 'sport = :$port' | grep -q ." || die "something still listens on port $port"
    done
    rm -f "$d"/pids/*
}

stop() {
    local d
    [ -d "$1" ] || return 0
    d=$(cd "$1" && pwd)
    kill_daemons "$d"
    find "$d" -mindepth 1 -delete
}

aws_() {
    env -u AWS_CA_BUNDLE AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" AWS_DEFAULT_REGION=us-east-1 \
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        "$(command -v /usr/bin/aws || command -v aws)" --endpoint-url "http://127.0.0.1:$rgw_port" "$@"
}

start() {
    local d=$1 fsid mon_port rgw_port osd_uuid t0
    for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool aws python3; do
        command -v "$b" >/dev/null || { echo "rgw.sh: $b is not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common awscli)" >&2; exit 77; }
    done
    [ "$(id -u)" -eq 0 ] || die "needs root (the Ceph daemons check their data directories' owner)"
    mkdir -p "$d" && d=$(cd "$d" && pwd)
    [ -z "$(ls -A "$d")" ] || die "$d is not empty"
    t0=$(date +%s.%N)
    deadline=$(( $(date +%s) + ${TB_RGW_START_TIMEOUT:-90} ))
    # Whatever ends the start before it is ready (a failed step, a signal) stops what it began.
    trap "[ -e $(printf %q "$d")/env ] || kill_daemons $(printf %q "$d") >/dev/null 2>&1 || true" EXIT
    trap 'die "interrupted"' INT TERM HUP
    mkdir -p "$d"/{mon,osd,log,run,pids,rgw}
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    mon_port=$(free_port)
    rgw_port=$(free_port)
    cat >"$d/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $d/keyring
run dir = $d/run
admin socket = $d/run/\$name.asok
log file = $d/log/\$name.log
pid file = $d/run/\$name.pid
mon data = $d/mon/\$cluster-\$id
osd data = $d/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = ${TB_RGW_MEMSTORE_BYTES:-4294967296}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
osd crush chooseleaf type = 0
paxos propose interval = 0.1
mon data avail crit = 1
mon data avail warn = 2
osd max object name len = 256
osd max object namespace len = 64
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $d/rgw
rgw dns name = 127.0.0.1
CONF
    local c="-c $d/ceph.conf"
    ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$d/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
        --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
    ceph-authtool "$d/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' >/dev/null
    ceph-authtool "$d/keyring" --gen-key -n client.rgw.t --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$d/monmap" >/dev/null
    ceph-mon $c --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring" >"$d/log/mkfs.log" 2>&1 \
        || die "ceph-mon --mkfs failed (see $d/log/mkfs.log)"
    setsid ceph-mon $c -f -i a >>"$d/log/mon.out" 2>&1 & echo $! >"$d/pids/mon"
    wait_until ceph $c --connect-timeout 2 mon stat || die "the monitor did not start (see $d/log)"
    # The keys made above for osd.0 and the gateway, known to the monitor.
    ceph $c osd new "$osd_uuid" 0 >>"$d/log/setup.log" 2>&1 || die "ceph osd new failed (see $d/log/setup.log)"
    ceph $c auth import -i "$d/keyring" >>"$d/log/setup.log" 2>&1 || die "ceph auth import failed (see $d/log/setup.log)"
    mkdir -p "$d/osd/ceph-0"
    ceph-osd $c -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$d/log/mkfs.log" 2>&1 || die "ceph-osd --mkfs failed (see $d/log/mkfs.log)"
    setsid ceph-osd $c -f -i 0 >>"$d/log/osd.out" 2>&1 & echo $! >"$d/pids/osd"
    wait_until sh -c "ceph $c osd stat 2>/dev/null | grep -q '1 up'" || die "the OSD did not come up (see $d/log)"
    setsid radosgw $c -f -n client.rgw.t >>"$d/log/rgw.out" 2>&1 & echo $! >"$d/pids/rgw"
    ak=TB$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
    sk=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')
    wait_until radosgw-admin $c user create --uid tester --display-name tester \
        --access-key "$ak" --secret-key "$sk" || die "radosgw-admin user create failed (see $d/log)"
    bucket=themis-test
    wait_until aws_ s3api create-bucket --bucket "$bucket" || die "the gateway did not answer on 127.0.0.1:$rgw_port (see $d/log)"
    cat >"$d/env.tmp" <<ENV
export AWS_ACCESS_KEY_ID=$ak
export AWS_SECRET_ACCESS_KEY=$sk
export AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$rgw_port
export TB_S3_BUCKET=$bucket
export TB_RGW_PORTS="$(listening $(cat "$d"/pids/*) | sort -un | tr '\n' ' ' | sed 's/ $//')"
ENV
    mv "$d/env.tmp" "$d/env"
    echo "rgw.sh: ready on http://127.0.0.1:$rgw_port in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-4) s" >&2
}

case "${1:-}" in
start) [ $# -eq 2 ] || die "usage: rgw.sh start DIR"; start "$2" ;;
stop) [ $# -eq 2 ] || die "usage: rgw.sh stop DIR"; stop "$2" ;;
*) die "usage: rgw.sh start DIR | rgw.sh stop DIR" ;;
esac

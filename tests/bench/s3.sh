#!/usr/bin/env bash
# bench s3: themis-s3 beside `aws s3 cp` on the same 1 GiB object against the same local
# RGW in the same invocation: throughput both ways and our peak RSS.
set -euo pipefail
: "${TB_BIN:?TB_BIN must name the directory of the built programs}"
PATH="$TB_BIN:$PATH"
SIZE=${BENCH_S3_SIZE:-1G}
W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/var/tmp}}/themis-bench-s3.XXXXXX")
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir "$W/rgw"
trap '"$here/s3/rgw.sh" stop "$W/rgw" >/dev/null 2>&1; rm -rf "$W"' EXIT
TB_RGW_MEMSTORE_BYTES=$((8 << 30)) "$here/s3/rgw.sh" start "$W/rgw" 2>/dev/null || { echo "bench s3: no RGW (Ceph not installed?)" >&2; exit 0; }
. "$W/rgw/env"
unset AWS_CA_BUNDLE
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_DEFAULT_REGION=$AWS_REGION
AWS=$(command -v /usr/bin/aws || command -v aws)
head -c "$SIZE" /dev/urandom >"$W/obj"
BYTES=$(stat -c %s "$W/obj")
S=s3://$TB_S3_BUCKET

# CPU seconds the Ceph daemons (radosgw, mon, osd) have used: with client and server on
# the same cores, what the server burns bounds what any client can reach.
server_cpu() {
    local f t=0 v
    for f in "$W"/rgw/pids/*; do
        v=$(awk '{ print $14 + $15 }' "/proc/$(cat "$f")/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo "scale=2; $t / $(getconf CLK_TCK)" | bc
}
declare -A SEC RSS CPU SRV
timed() {  # timed NAME CMD
    local name=$1 t0 t1 s0; shift
    sync; s0=$(server_cpu); t0=$(date +%s.%N)
    /usr/bin/time -f '%M %U %S' -o "$W/rss" bash -c "$*"
    t1=$(date +%s.%N)
    SEC[$name]=$(echo "$t1 - $t0" | bc -l); read -r RSS[$name] u s <"$W/rss"; CPU[$name]=$(echo "$u + $s" | bc)
    SRV[$name]=$(echo "$(server_cpu) - $s0" | bc)
}
timed put "themis-s3 put '$W/obj' $S/ours"
timed aput "$AWS --endpoint-url $AWS_ENDPOINT_URL s3 cp --only-show-errors '$W/obj' $S/theirs"
timed sput "themis-s3 put - $S/stream <'$W/obj'"
timed get "themis-s3 get $S/ours '$W/back'"
cmp "$W/obj" "$W/back"; rm -f "$W/back"
timed aget "$AWS --endpoint-url $AWS_ENDPOINT_URL s3 cp --only-show-errors $S/theirs '$W/back'"
cmp "$W/obj" "$W/back"; rm -f "$W/back"
timed sget "themis-s3 get $S/stream - | sha256sum >'$W/sum'"

mibs() { echo "scale=0; $BYTES / ${SEC[$1]} / 1048576" | bc; }
echo
echo "S3: $((BYTES / 1048576)) MiB object, local Ceph RGW (memstore) on 127.0.0.1, $(nproc) cores; one run each"
echo
echo "| row | ours | aws s3 cp | ratio (time) | our peak RSS | aws peak RSS |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '| upload, file | %.2f s (%s MiB/s) | %.2f s (%s MiB/s) | %s× | %d MiB | %d MiB |\n' "${SEC[put]}" "$(mibs put)" \
    "${SEC[aput]}" "$(mibs aput)" "$(echo "scale=2; ${SEC[put]} / ${SEC[aput]}" | bc)" $((RSS[put] / 1024)) $((RSS[aput] / 1024))
printf '| download, file | %.2f s (%s MiB/s) | %.2f s (%s MiB/s) | %s× | %d MiB | %d MiB |\n' "${SEC[get]}" "$(mibs get)" \
    "${SEC[aget]}" "$(mibs aget)" "$(echo "scale=2; ${SEC[get]} / ${SEC[aget]}" | bc)" $((RSS[get] / 1024)) $((RSS[aget] / 1024))
printf '| upload, stdin | %.2f s (%s MiB/s) | | | %d MiB | |\n' "${SEC[sput]}" "$(mibs sput)" $((RSS[sput] / 1024))
printf '| download, stdout (to sha256sum) | %.2f s (%s MiB/s) | | | %d MiB | |\n' "${SEC[sget]}" "$(mibs sget)" $((RSS[sget] / 1024))

echo
echo "CPU seconds during each transfer (client; Ceph daemons), $(nproc) cores in all:"
echo
echo "| transfer | ours: client | ours: server | aws: client | aws: server |"
echo "| --- | --- | --- | --- | --- |"
printf '| upload | %s | %s | %s | %s |\n' "${CPU[put]}" "${SRV[put]}" "${CPU[aput]}" "${SRV[aput]}"
printf '| download | %s | %s | %s | %s |\n' "${CPU[get]}" "${SRV[get]}" "${CPU[aget]}" "${SRV[aget]}"

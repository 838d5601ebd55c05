#!/usr/bin/env bash
# deps.sh: installs every Debian 12 package the project builds and tests with (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    build-essential pkg-config ca-certificates \
    librocksdb-dev libarchive-dev libzstd-dev libssl-dev libcurl4-openssl-dev \
    libxxhash-dev liblz4-dev libsnappy-dev zlib1g-dev \
    libyaml-dev libjansson-dev libexpat1-dev \
    zstd tar rocksdb-tools perl procps util-linux python3 bc time iproute2 curl clang-format \
    ceph-mon ceph-osd radosgw ceph-common awscli

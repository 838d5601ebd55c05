#!/usr/bin/python3
"""walscan [--check-committed|--check-per-batch|--check-stamps|--check-checkpoints TSV] FILE...

Without an option: every WAL record of RocksDB log files as one line of raw WriteBatch
tags, read by an implementation independent of ours and of ldb (which prints
BeginPersistedPrepare 0x12 like BeginPrepare 0x09, as BEGIN_PREPARE(false), and hides
LogData), for the tests and docs/wal-notes.md:

    SEQ COUNT OFFSET TAG...

TAG is the tag byte in hex; LogData 03 shows as 03:TSv1=NS for a stamp, the xid markers
(0a end prepare, 0b commit, 0c rollback) as 0a:XID; column-family records as 05@CF.
Exit 1 on a malformed file."""
import struct
import sys

BLOCK = 32768
NAMES_XID = {0x0A, 0x0B, 0x0C}


def records(data):
    """Yields (offset, payload) of each logical record: FULL, or FIRST..MIDDLE..LAST."""
    pos, buf, start = 0, b"", None
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left
            continue
        length, rtype = struct.unpack_from("<HB", data, pos + 4)
        hdr = 7
        if rtype >= 5 and rtype <= 8:  # recyclable: 4 more bytes of log number
            hdr, rtype = 11, rtype - 4
        if rtype == 0 and length == 0:  # preallocated zeros: the end
            return
        frag = data[pos + hdr:pos + hdr + length]
        if len(frag) < length:
            return  # torn tail
        if rtype == 1:
            yield pos, frag
        elif rtype == 2:
            buf, start = frag, pos
        elif rtype == 3:
            buf += frag
        elif rtype == 4:
            yield start, buf + frag
            buf = b""
        elif rtype < 128:
            raise ValueError("record type %d at %d" % (rtype, pos))
        pos += hdr + length


def varint(b, i):
    v, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def slice_(b, i):
    n, i = varint(b, i)
    return b[i:i + n], i + n


def tags(b, events=None):
    """The record's tags as tokens; events (a list) gets (tag, cf, key or xid) of each."""
    out, i = [], 12
    while i < len(b):
        t = b[i]
        i += 1
        cf, key, tok = 0, None, None
        if t in (0x04, 0x05, 0x06, 0x08, 0x0E, 0x10, 0x14, 0x17):
            cf, i = varint(b, i)
            tok = "%02x@%d" % (t, cf)
        if t in (0x00, 0x04, 0x07, 0x08, 0x14):  # deletes: key
            key, i = slice_(b, i)
        elif t in (0x01, 0x05, 0x02, 0x06, 0x0E, 0x0F, 0x10, 0x11, 0x16, 0x17):  # key value
            key, i = slice_(b, i)
            _, i = slice_(b, i)
        elif t == 0x03:
            blob, i = slice_(b, i)
            if len(blob) == 12 and blob[:4] == b"TSv1":
                tok = "03:TSv1=%d" % struct.unpack_from("<Q", blob, 4)
            else:
                tok = "03:%dB" % len(blob)
        elif t in NAMES_XID:
            key, i = slice_(b, i)
            tok = "%02x:%s" % (t, key.decode("latin-1"))
        elif t == 0x15:
            key, i = slice_(b, i)
            _, i = slice_(b, i)
            tok = "15:%s" % key.decode("latin-1")
        elif t not in (0x09, 0x0D, 0x12, 0x13):
            raise ValueError("unknown tag 0x%02x" % t)
        out.append(tok or "%02x" % t)
        if events is not None:
            events.append((t, cf, key))
    return out


DATA = {0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0E, 0x0F, 0x10, 0x11, 0x14, 0x16, 0x17}


def consumed_per_batch(events):
    """Sequence numbers a record takes under seq_per_batch (write-prepared/unprepared), as
    RocksDB's MemTableInserter advances them: at every end-prepare, commit and rollback
    marker, at a Noop that ends a non-empty part, and before a key repeated within the
    current sub-batch. Also returns how many parts were data committed without a prepare
    (each takes one more sequence, for its commit, outside the WAL under two_write_queues)."""
    n, hidden, empty, has_data, seen = 0, 0, True, False, set()
    for t, cf, key in events:
        if t in DATA:
            if (cf, key) in seen:
                n += 1
                seen = set()
            seen.add((cf, key))
            empty, has_data = False, True
        elif t in (0x03, 0x09, 0x12, 0x13):
            empty = False
        elif t in (0x0A, 0x0B, 0x0C) or (t == 0x0D and not empty):
            n += 1
            if t == 0x0D and has_data:
                hidden += 1
            empty, has_data, seen = True, False, set()
    return n, hidden


def committed_took(events, prepared):
    """Write-committed: data ops take one sequence each, except inside a prepare section
    (09 .. 0a), whose ops take theirs at the commit marker; a rollback takes none. Write
    groups merge any of these into one record."""
    took, section = 0, None
    for t, cf, key in events:
        if t == 0x09:
            section = 0
        elif t in DATA:
            if section is None:
                took += 1
            else:
                section += 1
        elif t == 0x0A:
            prepared[key] = section
            section = None
        elif t == 0x0B:
            took += prepared.pop(key, 0)
        elif t == 0x0C:
            prepared.pop(key, None)
    return took


def check(paths, per_batch):
    """Sequence continuity over WAL files in order. Write-committed: a record takes Count,
    a prepare section none, its commit the section's Count, a rollback none; exact.
    seq_per_batch: as consumed_per_batch; the commits outside the WAL make the next header
    jump ahead by at most as many as are owed."""
    expect, owed, prepared, n, jumps = None, 0, {}, 0, 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        for off, rec in records(data):
            seq, count = struct.unpack_from("<QI", rec, 0)
            events = []
            tags(rec, events)
            kinds = [e[0] for e in events]
            if expect is not None and seq != expect:
                gap = seq - expect
                if not per_batch or gap < 0 or gap > owed:
                    print("%s@%d: sequence %d, expected %d (owed %d)" % (path, off, seq, expect, owed))
                    return 1
                owed -= gap
                jumps += 1
            if per_batch:
                took, hidden = consumed_per_batch(events)
                owed += hidden
            else:
                took = committed_took(events, prepared)
            expect = seq + took
            n += 1
    print("ok %d records, next %d, %d jumps, %d commit sequences owed" % (n, expect or 0, jumps, owed))
    return 0


def check_stamps(paths):
    """Every write's first record is its TSv1 stamp. A record is cut into parts at the
    markers (0a, 0b, 0c) and at every Noop (a transaction's placeholder, or the end of a
    batch committed without Prepare); a part's first record after its begin marker (09,
    12, 13) must be a stamp, except: parts with no records (commit markers), rollback
    parts, the rollback's own commit (an empty LogData), and the later sections of an
    unprepared transaction (the stamp went with its first section)."""
    sections, bad, parts = set(), 0, 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        for off, rec in records(data):
            toks = tags(rec)
            cur = []
            for tok in toks + ["0d"]:
                if tok[:3] in ("0a:", "0b:", "0c:") or tok == "0d":
                    begin = cur[0] if cur and cur[0] in ("09", "12", "13") else None
                    body = cur[1:] if begin else cur
                    xid = tok[3:] if tok[:3] == "0a:" else None
                    later = begin in ("12", "13") and xid in sections
                    if begin in ("12", "13"):
                        sections.add(xid)
                    if body and tok[:3] != "0c:" and body != ["03:0B"] and not later:
                        parts += 1
                        if not body[0].startswith("03:TSv1="):
                            bad += 1
                            print("unstamped at %s@%d: %s" % (path, off, " ".join(cur + [tok])))
                    cur = []
                else:
                    cur.append(tok)
    print("%d writes, %d unstamped" % (parts, bad))
    return 1 if bad else 0


def check_checkpoints(tsv, paths):
    """The ground-truth property PITR relies on: for every checkpoint (checkpoints.tsv:
    name, sequence S, time T), the WAL's stamps in records at or below S are <= T and
    those above S are > T (a write group never straddles a checkpoint: the writers are
    held while it is taken). Write-committed prepare sections are skipped: their header
    holds the next free sequence and they take none, so a section rolled back before a
    checkpoint has a header above it; a committed one takes its sequences at its Commit."""
    with open(tsv) as f:
        ckpts = [(int(l.split()[1]), int(l.split()[2])) for l in f if l.strip()]
    n, bad = 0, 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        for off, rec in records(data):
            seq = struct.unpack_from("<Q", rec, 0)[0]
            toks = tags(rec)
            if toks and toks[0] == "09" and committed_took([(int(t[:2], 16), 0, t[3:]) for t in toks], {}) == 0:
                continue
            for tok in toks:
                if not tok.startswith("03:TSv1="):
                    continue
                ts = int(tok[8:])
                n += 1
                for s, t in ckpts:
                    if (seq <= s) != (ts <= t):
                        bad += 1
                        print("stamp %d of record %d at %s@%d is on the wrong side of checkpoint %d (%d)"
                              % (ts, seq, path, off, s, t))
    print("%d stamps, %d checkpoints, %d on the wrong side" % (n, len(ckpts), bad))
    return 1 if bad else 0


def main():
    args = sys.argv[1:]
    if len(args) > 1 and args[0] == "--check-checkpoints":
        return check_checkpoints(args[1], args[2:])
    if args and args[0] == "--check-stamps":
        return check_stamps(args[1:])
    if args and args[0] in ("--check-committed", "--check-per-batch"):
        return check(args[1:], args[0] == "--check-per-batch")
    for path in args:
        with open(path, "rb") as f:
            data = f.read()
        for off, rec in records(data):
            seq, count = struct.unpack_from("<QI", rec, 0)
            print(seq, count, off, " ".join(tags(rec)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, IndexError, struct.error) as e:
        print("walscan: %s" % e, file=sys.stderr)
        sys.exit(1)

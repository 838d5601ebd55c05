# hostile-tar.py CASE < plain.tar > hostile.tar: a themis backup stream (tar, uncompressed)
# made hostile in one way, for tests/cli/65-hostile-tar.t.
import hashlib, io, json, sys, tarfile

case = sys.argv[1]
src = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode='r:')
members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]
sst = next(m.name for m, _ in members if m.name.endswith('.sst'))

def raw_header(name, size, typ=b'0', mode=0o644, magic=b'ustar\x0000', fill=None):
    b = bytearray(512)
    b[0:len(name)] = name
    b[100:108] = b'%07o\0' % mode
    b[108:116] = b'0000000\0'
    b[116:124] = b'0000000\0'
    b[124:136] = b'%011o\0' % size
    b[136:148] = b'%011o\0' % 1700000000
    b[156:157] = typ
    b[257:265] = magic
    if fill:
        fill(b)
    b[148:156] = b' ' * 8
    b[148:156] = b'%06o\0 ' % sum(b)
    return bytes(b)

def pad(data):
    return data + b'\0' * (-len(data) % 512)

def retar(edit=None, extra=None):
    out = io.BytesIO()
    t = tarfile.open(fileobj=out, mode='w:', format=tarfile.PAX_FORMAT)
    for m, data in members:
        for mm, dd in (edit(m, data) if edit else [(m, data)]):
            t.addfile(mm, io.BytesIO(dd) if dd is not None else None)
    t.close()
    return out.getvalue(), t.offset - 1024  # where the end-of-archive blocks start

def copy(m, **kw):
    c = tarfile.TarInfo(kw.pop('name', m.name))
    c.type, c.size, c.mode, c.mtime = m.type, m.size, m.mode, m.mtime
    for k, v in kw.items():
        setattr(c, k, v)
    return c

if case == 'good':
    data, _ = retar()
elif case == 'sparse':
    # A GNU (old format) sparse member: 512 bytes stored, 10 GB declared, the rest a hole.
    real = 10 * 1024 ** 3
    def fill(b):
        b[386:398] = b'%011o\0' % (real - 512)
        b[398:410] = b'%011o\0' % 512
        b[483:495] = b'%012o' % real
    data = raw_header(b'db/', 0, b'5', 0o755) + raw_header(sst.encode(), 512, b'S', 0o644, b'ustar  \0', fill)
    data += b'x' * 512 + b'\0' * 1024
elif case == 'paxsparse':
    # A pax (GNU 1.0) sparse member: the map is the first block of its data.
    real = 10 * 1024 ** 3
    recs = b''
    for k, v in ((b'GNU.sparse.major', b'1'), (b'GNU.sparse.minor', b'0'), (b'GNU.sparse.name', sst.encode()),
                 (b'GNU.sparse.realsize', b'%d' % real)):
        body = b' ' + k + b'=' + v + b'\n'
        n = len(body) + 1
        n = len(b'%d' % (n + len(str(n)))) + len(body)
        recs += b'%d' % n + body
    mapblk = pad(b'1\n%d\n512\n' % (real - 512))
    data = raw_header(b'db/', 0, b'5', 0o755) + raw_header(b'db/PaxHeader', len(recs), b'x') + pad(recs)
    data += raw_header(b'db/GNUSparseFile.0/x', len(mapblk) + 512) + mapblk + b'y' * 512 + b'\0' * 1024
elif case in ('setuid', 'mode-change', 'world-writable', 'dir-mode'):
    want = {'setuid': 0o6777, 'mode-change': 0o600, 'world-writable': 0o666, 'dir-mode': 0o7777}[case]
    hit = (lambda m: m.isdir()) if case == 'dir-mode' else (lambda m: m.name == sst)
    data, _ = retar(lambda m, d: [(copy(m, mode=want) if hit(m) else m, d)])
elif case == 'dup':
    data, _ = retar(lambda m, d: [(m, d), (m, d)] if m.name == sst else [(m, d)])
elif case == 'dirfile':
    def edit(m, d):
        if m.name == 'db/CURRENT':
            return [(copy(m, name='db/CURRENT/', type=tarfile.DIRTYPE, size=0, mode=0o755), None), (m, d)]
        return [(m, d)]
    data, _ = retar(edit)
elif case == 'longname':
    # A 4,000-byte name, listed in the manifest too: every checksum matches.
    long = 'db/' + 'a' * 3997
    def edit(m, d):
        if m.name == 'MANIFEST.json':
            j = json.loads(d)
            j['files'].append({'name': long, 'size': 1, 'sha256': hashlib.sha256(b'z').hexdigest(), 'mode': 0o644})
            d = json.dumps(j, indent=2, sort_keys=True).encode() + b'\n'
            return [(copy(m, name=long, size=1), b'z'), (copy(m, size=len(d)), d)]
        return [(m, d)]
    data, _ = retar(edit)
elif case == 'appended':
    data, _ = retar()
    evil = raw_header(b'db/../../x', 5) + pad(b'evil\n') + b'\0' * 1024
    data += evil
elif case == 'trailing':
    data, _ = retar()
    data += b'garbage'
elif case == 'noend':
    data, end = retar()
    data = data[:end]
elif case == 'oneend':
    data, end = retar()
    data = data[:end + 512]
else:
    sys.exit('unknown case ' + case)
sys.stdout.buffer.write(data)

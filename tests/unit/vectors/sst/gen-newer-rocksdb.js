// gen-newer-rocksdb.js: writes the table and blob files of tests/unit/vectors/sst/ with the
// RocksDB that the npm package rocksdb-native 3.18.1 bundles (RocksDB 10.5.1, git c007dd1d):
// format_version 6 and 7 tables (XXH3, the defaults of that RocksDB) and a blob file.
// Run: npm install rocksdb-native@3.18.1, then (one database per process):
const RocksDB = require('rocksdb-native')
async function make (path, fv, blobs) {
  const db = new RocksDB(path, { tableFormatVersion: fv, tableBlockSize: 1024, enableBlobFiles: blobs, minBlobSize: 1024, blobFileSize: 1 << 20 })
  await db.ready()
  const w = db.write()
  for (let i = 0; i < 800; i++) {
    const k = 'key' + String(i).padStart(8, '0')
    let v = 'value ' + i + ' of a table written by a newer RocksDB, ' + (i * 7919 % 1000)
    if (blobs && i % 10 === 0) v = v.repeat(20)
    w.put(k, v)
  }
  w.deleteRange('key00000010', 'key00000020')
  await w.flush()
  await db.flush()
  await db.close()
}
// One database a run: node gen-newer-rocksdb.js OUTDIR/fv6 6 && node gen-newer-rocksdb.js OUTDIR/fv7 7 blobs
make(process.argv[2], Number(process.argv[3]), process.argv[4] === 'blobs').catch((e) => { console.error(e); process.exit(1) })

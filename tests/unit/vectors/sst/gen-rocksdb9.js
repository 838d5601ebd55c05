// gen-rocksdb9.js: writes a table with the RocksDB that the npm package @nxtedition/rocksdb
// 12.2.12 bundles (RocksDB 9.7.4): format_version 6, XXH3, ZSTD with a dictionary (that
// binding's defaults), so its index block is compressed too. The binding cannot flush: the
// first run leaves the data in the WAL, the second open recovers it into a table.
// Run: npm install @nxtedition/rocksdb@12.2.12 && node gen-rocksdb9.js OUTDIR write && node gen-rocksdb9.js OUTDIR reopen
const { RocksLevel } = require('@nxtedition/rocksdb')
;(async () => {
  const db = new RocksLevel(process.argv[2], {})
  await db.open({ blockSize: 1024, compression: true })
  if (process.argv[3] === 'write') {
    const ops = []
    for (let i = 0; i < 6000; i++) {
      const k = 'key' + String(i).padStart(8, '0')
      ops.push({ type: 'put', key: k, value: 'value ' + i + ' written by RocksDB 9.7 ' + (i * 7919 % 1000) + ' ' + 'x'.repeat(i % 50) })
    }
    ops.push({ type: 'del', key: 'key00000100' })
    await db.batch(ops)
  }
  await db.close()
})().catch((e) => { console.error(e); process.exit(1) })

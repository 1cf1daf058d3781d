// DuckDB peer for bench/run.sh (SPEC §9): the rows turnstiled computes, in SQL.
//
//   node bench/peers/duckdb.mjs --modules NODE_PREFIX [--threads N] FILE...
//
// NODE_PREFIX is a directory where `npm install --prefix NODE_PREFIX @duckdb/node-api` ran.
// FILEs are MTA weekly files, plain or .zst (DuckDB reads .zst itself), in the order
// turnstiled's file source reads them (sorted). Computes, as turnstiled does with
// `counters: cumulative`, `timezone: America/New_York` and 4 h tumbling windows:
//   - device = C/A+UNIT+SCP; local DATE TIME read in America/New_York, then UTC;
//   - SPEC §3: per device, in arrival order (file order, then line order), a reading whose
//     time is not after the last accepted reading's time is dropped (duplicate or
//     out_of_order). Since accepted times rise strictly, "not after the last accepted" is
//     "not after every earlier reading of the device": a running MAX window. The first
//     accepted reading is the baseline (0, 0); then |d| counts if |d| <= 10000, else 0 (a
//     reset), and the baseline moves either way (LAG over the accepted readings);
//   - per (STATION, 4 h window from the epoch): sums of entries and exits, and events = the
//     accepted readings.
// Prints one line: duckdb wall=S rows=N entries=E exits=X events=V input=R version=V
// (wall from creating the database to the last result row; includes reading the files).
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const args = process.argv.slice(2);
let modules = null;
let threads = 2;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--modules') modules = args[++i];
  else if (args[i] === '--threads') threads = Number(args[++i]);
  else files.push(path.resolve(args[i]));
}
if (!modules || files.length === 0) {
  console.error('usage: node duckdb.mjs --modules NODE_PREFIX [--threads N] FILE...');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(modules), 'package.json'));
const { DuckDBInstance } = await import(pathToFileURL(require.resolve('@duckdb/node-api')).href);

const sqlString = (s) => `'${s.replaceAll("'", "''")}'`;
const compression = files.every((f) => f.endsWith('.zst')) ? 'zstd' : 'none';
const fileList = `[${files.map(sqlString).join(', ')}]`;

const start = process.hrtime.bigint();
const db = await DuckDBInstance.create(':memory:', { threads: String(threads) });
const con = await db.connect();
await con.run('SET preserve_insertion_order = true');
// The table keeps the input order (files in list order, lines in file order) as its rowid,
// which is the arrival order turnstiled sees.
await con.run(`
  CREATE TEMP TABLE raw AS
  SELECT * FROM read_csv(${fileList},
    compression = '${compression}', header = true, delim = ',', quote = '', escape = '',
    columns = {'ca': 'VARCHAR', 'unit': 'VARCHAR', 'scp': 'VARCHAR', 'station': 'VARCHAR',
               'linename': 'VARCHAR', 'division': 'VARCHAR', 'date': 'VARCHAR',
               'time': 'VARCHAR', 'desc': 'VARCHAR', 'entries': 'BIGINT', 'exits': 'BIGINT'})`);
const reader = await con.runAndReadAll(`
  WITH l AS (
    SELECT rowid AS ord, ca || '+' || unit || '+' || scp AS device, station,
           strptime(date || ' ' || time, ['%m/%d/%Y %H:%M:%S', '%m-%d-%y %H:%M:%S']) AS lt,
           CAST(epoch(timezone('America/New_York', lt)) AS BIGINT) AS u,
           entries, exits
    FROM raw),
  -- turnstiled reads a wall time repeated by fall-back as its first occurrence (fold=0),
  -- ICU as its second: take the hour before where it shows the same wall time. (In New York
  -- only 01:xx repeats; a wall time skipped by spring-forward gets the offset before the
  -- change in both.)
  r AS (
    SELECT ord, device, station, entries, exits,
           CASE WHEN hour(lt) = 1 AND CAST(timezone('America/New_York',
                       to_timestamp(u - 3600)) AS TIMESTAMP) = lt
                THEN u - 3600 ELSE u END AS t
    FROM l),
  m AS (
    SELECT *, max(t) OVER (PARTITION BY device ORDER BY ord
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS seen
    FROM r),
  accepted AS (SELECT * FROM m WHERE seen IS NULL OR t > seen),
  d AS (
    SELECT station, t,
           entries - lag(entries) OVER w AS de,
           exits - lag(exits) OVER w AS dx
    FROM accepted
    WINDOW w AS (PARTITION BY device ORDER BY t)),
  win AS (
    SELECT station, t - t % 14400 AS window_start,
           sum(CASE WHEN abs(de) <= 10000 THEN abs(de) ELSE 0 END) AS entries,
           sum(CASE WHEN abs(dx) <= 10000 THEN abs(dx) ELSE 0 END) AS exits,
           count(*) AS events
    FROM d GROUP BY station, window_start)
  SELECT count(*), sum(entries), sum(exits), sum(events), (SELECT count(*) FROM raw),
         version()
  FROM win`);
const [rows, entries, exits, events, input, version] = reader.getRows()[0];
const wall = Number(process.hrtime.bigint() - start) / 1e9;
console.log(`duckdb wall=${wall.toFixed(3)} rows=${rows} entries=${entries} exits=${exits}` +
            ` events=${events} input=${input} version=${version}`);

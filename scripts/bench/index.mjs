#!/usr/bin/env node
// npm run bench [-- --only version,loopback] [--runs N] [--warmup N] [--ours DIR] [--ref DIR] [--no-write]
// Times tscni against the reference plugins side by side in one run, prints a table per section
// and rewrites that section of BENCHMARKS.md (between its markers).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { environment, makeContext, renderTable, replaceSection, ROOT, timeSpawn, waitForQuiet } from './lib.mjs';
import { SECTIONS } from './sections.mjs';

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string', multiple: true },
    runs: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '5' },
    ours: { type: 'string', default: join(ROOT, 'dist', 'bin') },
    ref: { type: 'string', default: '/usr/lib/cni' },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log(`usage: npm run bench -- [--only SECTION[,SECTION]] [--runs N] [--warmup N] [--ours DIR] [--ref DIR] [--no-write]\nsections: ${SECTIONS.map((s) => s.id).join(', ')}`);
  process.exit(0);
}
const only = opts.only?.flatMap((o) => o.split(','));
const unknown = only?.filter((id) => !SECTIONS.some((s) => s.id === id)) ?? [];
if (unknown.length) {
  console.error(`bench: unknown section(s) ${unknown.join(', ')}; known: ${SECTIONS.map((s) => s.id).join(', ')}`);
  process.exit(2);
}
const ours = resolve(opts.ours);
if (!existsSync(join(ours, 'tscni'))) {
  console.error(`bench: ${join(ours, 'tscni')} not found; run npm run build first`);
  process.exit(2);
}

const env = environment(ours);
console.log(env);
const bench = join(ROOT, 'BENCHMARKS.md');
const HEADER = '# Benchmarks\n\nWritten by `npm run bench`; each section is rewritten by its own run.\n';
// Rows of every section run so far, by section id: the targets section reads them (one run).
const results = {};
let failed = false;
for (const section of SECTIONS.filter((s) => !only || only.includes(s.id))) {
  const ctx = { ...makeContext({ ours, ref: resolve(opts.ref), runs: Number(opts.runs), warmup: Number(opts.warmup) }), timeSpawn, results };
  try {
    const idle = await waitForQuiet();
    const rows = await section.run(ctx);
    results[section.id] = rows;
    const table = section.render ? section.render(rows) : renderTable(rows);
    console.log(`\n## ${section.title}\n${table}`);
    const body = [`## ${section.title}`, '', section.notes ?? '', '', table, '', `${ctx.runs} runs after ${ctx.warmup} warm-up · CPUs ${Math.round(idle * 100)} % idle in the second before the section · ${env}`].filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n');
    if (!opts['no-write']) {
      // read-modify-write per section: other runs may have rewritten other sections meanwhile
      writeFileSync(bench, replaceSection(existsSync(bench) ? readFileSync(bench, 'utf8') : HEADER, section.id, body));
      console.log(`updated ${bench} (${section.id})`);
    } else if (section.notes) console.log(`\n${section.notes}`); // figures outside the table (vxlan's TCP) are only here
  } catch (err) {
    failed = true;
    console.error(`bench: section ${section.id} failed: ${err.message}`);
  } finally {
    ctx.cleanup();
  }
}
process.exitCode = failed ? 1 : 0;

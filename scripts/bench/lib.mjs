// The benchmark framework: time process starts with spawnSync, summarise, and render markdown.
// Sections (scripts/bench/sections.mjs) use `ctx` from makeContext() and return rows.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A child environment built from scratch: NODE_EXTRA_CA_CERTS alone adds ~37 ms to a Node start. */
export function childEnv(vars = {}) {
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...vars };
  delete env.NODE_EXTRA_CA_CERTS;
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined));
}

/** Milliseconds one spawnSync takes; throws with the output when the child fails unexpectedly. */
export function timeSpawn(file, { env = {}, stdin = '', args = [], expectStatus = 0 } = {}) {
  const start = process.hrtime.bigint();
  const r = spawnSync(file, args, { env: childEnv(env), input: stdin, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  // EPIPE: the child exited without reading stdin (the Go plugins ignore it for VERSION).
  if (r.error && !(r.error.code === 'EPIPE' && r.status !== null)) throw new Error(`${file}: ${r.error.message}`);
  if (expectStatus !== undefined && r.status !== expectStatus) {
    throw new Error(`${file} (${env.CNI_COMMAND ?? args.join(' ')}) exited ${r.status}: ${(r.stdout + r.stderr).slice(0, 500)}`);
  }
  return ms;
}

/** [idle, total] jiffies of all CPUs, from /proc/stat. */
function cpuTimes() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return [fields[3] + (fields[4] ?? 0), fields.reduce((a, b) => a + b, 0)];
}

/**
 * Waits until the CPUs are ≥ 90 % idle over a second — what a previous section or test run left
 * behind (veth teardown, RCU callbacks, writeback) has settled — for at most `maxMs`. Returns the
 * idle fraction of the last second, which the section's footer reports.
 */
export async function waitForQuiet(maxMs = 60_000) {
  const end = Date.now() + maxMs;
  for (;;) {
    const [idle0, total0] = cpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const [idle1, total1] = cpuTimes();
    const idle = (idle1 - idle0) / Math.max(1, total1 - total0);
    if (idle >= 0.9 || Date.now() >= end) return idle;
  }
}

export function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { n: sorted.length, median: at(0.5), p90: at(0.9), min: sorted[0] };
}

/**
 * Runs `iteration` warmup + runs times; it returns { label: ms } for the operations it timed
 * (e.g. ADD and DEL of one attachment), so one loop can time a pair that must alternate.
 */
export function sample(iteration, { runs, warmup }) {
  for (let i = 0; i < warmup; i++) iteration(i);
  const samples = {};
  for (let i = 0; i < runs; i++) {
    for (const [label, ms] of Object.entries(iteration(warmup + i))) (samples[label] ??= []).push(ms);
  }
  return Object.fromEntries(Object.entries(samples).map(([label, s]) => [label, stats(s)]));
}

/** Network namespaces for a section, removed by ctx.cleanup() even when the section throws. */
function netnsPool(prefix, cleanups) {
  let n = 0;
  return () => {
    const name = `${prefix}${n++}`;
    execFileSync('ip', ['netns', 'add', name]);
    cleanups.push(() => spawnSync('ip', ['netns', 'del', name]));
    return { name, path: `/run/netns/${name}` };
  };
}

export function makeContext({ ours, ref, runs, warmup }) {
  const cleanups = [];
  const prefix = `bench${process.pid % 10000}x`;
  return {
    runs,
    warmup,
    ours: (plugin) => join(ours, plugin),
    ref: (plugin) => join(ref, plugin),
    oursDir: ours,
    refDir: ref,
    netns: netnsPool(prefix, cleanups),
    containerId: (i) => `${prefix}-${i}`,
    sample: (iteration, opts = {}) => sample(iteration, { runs, warmup, ...opts }),
    /** One row per operation: ours vs reference, with the ratio ours/reference. */
    compare: (operation, ours, reference) => ({ operation, ours, reference, ratio: reference ? ours.median / reference.median : undefined }),
    cleanup: () => {
      while (cleanups.length) cleanups.pop()();
    },
  };
}

const fmt = (ms) => (ms === undefined ? '—' : `${ms.toFixed(2)} ms`);

export function renderTable(rows) {
  const lines = ['| operation | tscni median | tscni p90 | reference median | reference p90 | tscni / reference |', '|---|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    lines.push(`| ${r.operation} | ${fmt(r.ours.median)} | ${fmt(r.ours.p90)} | ${fmt(r.reference?.median)} | ${fmt(r.reference?.p90)} | ${r.ratio === undefined ? '—' : `${r.ratio.toFixed(2)}×`} |`);
  }
  return lines.join('\n');
}

function tryText(file, args) {
  try {
    return execFileSync(file, args, { encoding: 'utf8', env: childEnv(), stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** Machine, versions and date: printed under every section so numbers can be compared later. */
export function environment(ours) {
  const info = JSON.parse(tryText(join(ours, 'tscni'), ['version', '--json']) ?? '{}');
  const refVersion = tryText('dpkg-query', ['-W', '-f=${Version}', 'containernetworking-plugins']);
  const cpu = cpus();
  return [
    `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, Linux ${release()}, load average ${loadavg()[0].toFixed(1)} at start`,
    `versions: tscni ${info.version ?? '?'} (bun --compile --bytecode), reference containernetworking-plugins ${refVersion ?? '?'}, node ${process.versions.node}`,
    `date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
  ].join(' · ');
}

/** Replaces the text between `<!-- bench:ID -->` and `<!-- /bench:ID -->`, or appends the block. */
export function replaceSection(doc, id, body) {
  const start = `<!-- bench:${id} -->`;
  const end = `<!-- /bench:${id} -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) return doc.slice(0, i) + block + doc.slice(j + end.length);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

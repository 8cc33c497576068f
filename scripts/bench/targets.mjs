// Issue 8's "Done when" lines, checked against the rows the other sections produced in this run.
// It runs last; a target whose section did not run in this invocation says so.

const find = (rows, pred) => rows?.find(pred);
const ratioOf = (row) => (row && row.ratio !== undefined ? row.ratio : undefined);

function target(name, goal, ratio, met, detail) {
  return { name, goal, ratio, met, detail };
}

export default {
  id: 'targets',
  title: 'Targets (issue 8, "Done when")',
  notes:
    'Computed from the sections above in the same run: ratios are tscni median / reference median (wall time). ' +
    'Where a target is missed, "Where the milliseconds go" below says what bounds it.',
  render(rows) {
    const lines = ['| target | goal | tscni / reference | met | detail |', '|---|---|---:|:---:|---|'];
    for (const t of rows) {
      lines.push(`| ${t.name} | ${t.goal} | ${t.ratio === undefined ? '—' : `${t.ratio.toFixed(2)}×`} | ${t.met === undefined ? 'not run' : t.met ? 'yes' : '**no**'} | ${t.detail ?? ''} |`);
    }
    return lines.join('\n');
  },
  run(ctx) {
    const { bridge, chain } = ctx.results;
    const hostLocal = ctx.results['host-local'];
    const rows = [];
    const atMost = (name, goal, limit, row) => {
      const r = ratioOf(row);
      rows.push(target(name, goal, r, r === undefined ? undefined : r <= limit, row ? `${row.ours.median.toFixed(1)} ms vs ${row.reference.median.toFixed(1)} ms` : 'section not run'));
    };
    atMost('bridge + host-local ADD', '≤ 1.0×', 1.0, find(bridge, (r) => r.operation === 'bridge ADD'));
    atMost('bridge + host-local DEL', '≤ 1.0×', 1.0, find(bridge, (r) => r.operation === 'bridge DEL'));

    for (const withPort of [false, true]) {
      const add = find(chain, (r) => r.operation.startsWith('pod add') && r.operation.includes('port mapping') === withPort);
      const del = find(chain, (r) => r.operation.startsWith('pod del') && r.operation.includes('port mapping') === withPort);
      const name = `containerd chain add + del${withPort ? ', 1 port mapping' : ''}`;
      if (!add || !del) {
        rows.push(target(name, '≤ 1.0×', undefined, undefined, 'section not run'));
        continue;
      }
      const ours = add.ours.median + del.ours.median;
      const ref = add.reference.median + del.reference.median;
      rows.push(target(name, '≤ 1.0×', ours / ref, ours / ref <= 1.0, `${ours.toFixed(1)} ms vs ${ref.toFixed(1)} ms (sum of medians)`));
    }

    const conc = find(bridge, (r) => r.concurrency === 100);
    if (conc) {
      const { ours, reference } = conc.tally;
      const clean = ours.failures === 0 && ours.dups === 0;
      rows.push(target('100 concurrent ADDs', '≤ 1.0× wall, 0 failures, 0 duplicates', conc.ratio, conc.ratio <= 1.0 && clean, `${conc.ours.median.toFixed(0)} ms vs ${conc.reference.median.toFixed(0)} ms; failures ${ours.failures} vs ${reference.failures}; duplicates ${ours.dups} vs ${reference.dups}`));
    } else rows.push(target('100 concurrent ADDs', '≤ 1.0× wall, 0 failures, 0 duplicates', undefined, undefined, 'section not run'));

    for (const verb of ['ADD', 'DEL']) {
      const row = find(hostLocal, (r) => r.operation === `${verb}, 1,000 reserved`);
      const r = ratioOf(row);
      rows.push(target(`host-local ${verb} at 1,000 reservations`, '≥ 2× faster (≤ 0.50×)', r, r === undefined ? undefined : r <= 0.5, row ? `${row.ours.median.toFixed(1)} ms vs ${row.reference.median.toFixed(1)} ms (exec)` : 'section not run'));
    }
    return rows;
  },
};

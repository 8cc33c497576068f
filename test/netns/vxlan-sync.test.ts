import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OUR_BIN } from '../support/paths.ts';
import { Scope, sh } from '../support/scope.ts';
import { DEVICE, kernelState, loneNode, peer } from '../support/vxlan-node.ts';
import { vtepMac } from '../../plugins/vxlan/peers.ts';

/**
 * `tscni vxlan sync` diffs against the peers it last applied (the record in the state dir) instead
 * of reading the kernel's entries; `--full` reads them. Two twin nodes get the same peer files, one
 * synced incrementally and one fully: their kernel state must be identical after every step.
 */


interface Node {
  ns: string;
  confFile: string;
  stateDir: string;
}

function makeNode(s: Scope, peersFile: string, tag: string): Node {
  const ns = loneNode(s, tag);
  const dir = s.tmpdir();
  const stateDir = join(dir, 'state');
  const confFile = join(dir, 'overlay.conf');
  writeFileSync(confFile, JSON.stringify({ cniVersion: '1.0.0', name: 'overlay', type: 'vxlan', network: '10.0.0.0/8', subnet: '10.244.1.0/24', peersFile, stateDir }));
  return { ns, confFile, stateDir };
}

function sync(node: Node, ...flags: string[]): Record<string, unknown> {
  const r = spawnSync('ip', ['netns', 'exec', node.ns, join(OUR_BIN, 'tscni'), 'vxlan', 'sync', '--conf', node.confFile, ...flags], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}


describe('vxlan sync: incremental against the applied record, full against the kernel', () => {
  const s = new Scope();
  afterEach(() => s.dispose());

  it('leaves exactly the kernel state a full reconcile leaves, through joins, leaves, moves and bad entries', () => {
    const peersFile = join(s.tmpdir(), 'peers.json');
    const write = (entries: unknown[]) => writeFileSync(peersFile, JSON.stringify(entries));
    const base = Array.from({ length: 40 }, (_, n) => peer(n));
    write(base);
    const [inc, full] = [makeNode(s, peersFile, 'i'), makeNode(s, peersFile, 'f')];
    expect(sync(inc)).toMatchObject({ peers: 40, changed: 40, diff: 'kernel' }); // no record yet
    expect(sync(full, '--full')).toMatchObject({ peers: 40, changed: 40, diff: 'kernel' });
    expect(kernelState(inc.ns)).toEqual(kernelState(full.ns));
    expect(kernelState(inc.ns).routes).toHaveLength(40);

    const steps: [string, unknown[], Record<string, number>][] = [
      ['nothing changed', base, { changed: 0, removed: 0 }],
      ['one node moves to a new address (new MAC)', base.map((p, n) => (n === 7 ? peer(7, '192.168.100.200') : p)), { changed: 1, removed: 1 }],
      ['it moves back, keeping the MAC it had there', base.map((p, n) => (n === 7 ? peer(7, '192.168.100.201', vtepMac(1, '192.168.100.200')) : p)), { changed: 1 }],
      ['two join, one leaves, the moved one is back', [...base.slice(1), peer(300), peer(301)], { changed: 3 }],
      ['bad entries next to good ones', [...base, { subnet: '10.244.1.0/24', ip: '192.168.100.99' }, { subnet: '10.1.2.128/25', ip: '192.168.100.98' }, 'nonsense'], { rejected: 3 }],
      ['a subnet split: same VTEP address, other prefix', [...base.slice(0, 5).map((p, n) => (n === 3 ? { ...p, subnet: '10.1.3.0/25' } : p)), ...base.slice(5)], { changed: 1 }],
      ['everyone leaves', [], { removed: 120 }],
      ['everyone is back', base, { changed: 40 }],
    ];
    for (const [what, entries, expected] of steps) {
      write(entries);
      expect(sync(inc), what).toMatchObject({ diff: 'state', ...expected });
      sync(full, '--full');
      expect(kernelState(inc.ns), what).toEqual(kernelState(full.ns));
      // and a full read of the incremental node finds nothing to do
      expect(sync(inc, '--full'), what).toMatchObject({ changed: 0, removed: 0, diff: 'kernel' });
    }
  });

  it('does not see entries changed behind its back; --full repairs them', () => {
    const peersFile = join(s.tmpdir(), 'peers.json');
    writeFileSync(peersFile, JSON.stringify([peer(2), peer(3), peer(4)]));
    const [node, twin] = [makeNode(s, peersFile, 'd'), makeNode(s, peersFile, 't')];
    sync(node);
    sync(twin);
    const inNode = (...argv: string[]) => sh(['ip', 'netns', 'exec', node.ns, ...argv]);
    inNode('ip', 'route', 'del', '10.1.2.0/24', 'dev', DEVICE);
    inNode('ip', 'neigh', 'replace', '10.1.3.0', 'lladdr', '02:00:00:00:00:99', 'dev', DEVICE, 'nud', 'permanent');
    inNode('bridge', 'fdb', 'del', vtepMac(1, peer(4).ip), 'dev', DEVICE, 'self');
    inNode('ip', 'route', 'add', '10.1.9.0/24', 'via', '10.1.9.0', 'dev', DEVICE, 'onlink');
    expect(kernelState(node.ns)).not.toEqual(kernelState(twin.ns));
    expect(sync(node)).toMatchObject({ changed: 0, removed: 0, diff: 'state' });
    expect(sync(node, '--full')).toMatchObject({ changed: 3, removed: 1, diff: 'kernel' });
    expect(kernelState(node.ns)).toEqual(kernelState(twin.ns));
  });

  it('reads the kernel when the record is missing or damaged, or the device is not the one it describes', () => {
    const peersFile = join(s.tmpdir(), 'peers.json');
    writeFileSync(peersFile, JSON.stringify([peer(2), peer(3)]));
    const [node, twin] = [makeNode(s, peersFile, 'r'), makeNode(s, peersFile, 't')];
    sync(twin);
    const record = join(node.stateDir, `${DEVICE}.applied`);
    expect(sync(node)).toMatchObject({ diff: 'kernel', changed: 2 });
    expect(sync(node)).toMatchObject({ diff: 'state', changed: 0 });
    const good = readFileSync(record, 'utf8');

    // the record says peer 3 is gone, but the checksum gives it away: the kernel is read
    const [header, peers] = good.split('\n') as [string, string];
    writeFileSync(record, `${header}\n${JSON.stringify(JSON.parse(peers).slice(0, 1))}\n`);
    expect(sync(node)).toMatchObject({ diff: 'kernel', changed: 0, removed: 0 });
    writeFileSync(record, good.slice(0, 40));
    expect(sync(node)).toMatchObject({ diff: 'kernel', changed: 0 });
    rmSync(record);
    expect(sync(node)).toMatchObject({ diff: 'kernel', changed: 0 });
    expect(sync(node)).toMatchObject({ diff: 'state' });

    // the device deleted and re-created by hand, as specified but empty: another ifindex
    const dev = JSON.parse(sh(['ip', '-n', node.ns, '-d', '-json', 'link', 'show', DEVICE]))[0];
    sh(['ip', '-n', node.ns, 'link', 'del', DEVICE]);
    sh(['ip', '-n', node.ns, 'link', 'add', DEVICE, 'address', dev.address, 'mtu', String(dev.mtu), 'type', 'vxlan', 'id', '1', 'local', '192.168.100.1', 'dev', 'eth0', 'dstport', '4789', 'nolearning']);
    sh(['ip', '-n', node.ns, 'addr', 'add', '10.244.1.0/32', 'dev', DEVICE]);
    sh(['ip', '-n', node.ns, 'link', 'set', DEVICE, 'up']);
    expect(kernelState(node.ns).routes).toEqual([]);
    expect(sync(node)).toMatchObject({ diff: 'kernel', changed: 2 });
    expect(kernelState(node.ns)).toEqual(kernelState(twin.ns));

    // a device that is not as specified (down: the kernel dropped its routes) is read, and fixed
    sh(['ip', '-n', node.ns, 'link', 'set', DEVICE, 'down']);
    expect(sync(node)).toMatchObject({ diff: 'kernel', changed: 2 });
    expect(kernelState(node.ns)).toEqual(kernelState(twin.ns));
  });
});

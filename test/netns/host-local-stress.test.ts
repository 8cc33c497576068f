import { afterAll, describe, expect, it } from 'vitest';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execPlugin } from '../support/cni.ts';
import { OUR_BIN } from '../support/paths.ts';
import { runAsync, type AsyncRun } from '../support/run-async.ts';
import { Scope } from '../support/scope.ts';

const PLUGIN = join(OUR_BIN, 'host-local');

/** Starts the plugin asynchronously; `killAfterMs` sends SIGKILL at that point of its life. */
function start(command: string, id: string, conf: object, killAfterMs?: number): Promise<AsyncRun> {
  const env = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN };
  return runAsync([PLUGIN], { env, input: JSON.stringify(conf), killAfterMs });
}

/** Every reservation file (address → "ID|ifname") and index entry in a store, checked for consistency. */
function inspect(store: string) {
  const reservations = new Map<string, string>();
  for (const name of readdirSync(store)) {
    if (name.startsWith('.') || name === 'lock' || name.startsWith('last_reserved_ip')) continue;
    const [id, ifname, ...rest] = readFileSync(join(store, name), 'utf8').split('\r\n');
    expect(rest, `torn or foreign file ${name}`).toEqual([]);
    reservations.set(name, `${id}|${ifname}`);
  }
  const indexed = new Map<string, string>();
  const owners = join(store, '.tscni/owners');
  for (const key of readdirSync(owners)) {
    if (key.startsWith('.')) continue;
    for (const address of readdirSync(join(owners, key))) {
      const entry = lstatSync(join(owners, key, address));
      const file = reservations.has(address) ? lstatSync(join(store, address)) : undefined;
      if (file && file.ino === entry.ino) indexed.set(address, key.replace(':', '|'));
    }
  }
  return { reservations, indexed };
}

describe('host-local under concurrency and SIGKILL', () => {
  const s = new Scope();
  afterAll(() => s.dispose());
  const conf = (dataDir: string, cniVersion = '1.0.0') => ({
    cniVersion,
    name: 'stress',
    type: 'host-local',
    ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.8.0.0/24' }], [{ subnet: 'fd00:8::/64' }]] },
  });

  it('runs 150 ADDs and 60 DELs at once on one store: no duplicate, no error, no leak', async () => {
    const dataDir = s.tmpdir();
    const c = conf(dataDir);
    const old = Array.from({ length: 60 }, (_, i) => `${s.prefix}-old${i}`);
    const fresh = Array.from({ length: 150 }, (_, i) => `${s.prefix}-new${i}`);
    for (const id of old) expect(execPlugin(PLUGIN, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN }, c).status).toBe(0);

    const outcomes = await Promise.all([...fresh.map((id) => start('ADD', id, c)), ...old.map((id) => start('DEL', id, c))]);
    expect(outcomes.filter((o) => o.status !== 0).map((o) => o.stdout)).toEqual([]);

    const adds = outcomes.slice(0, fresh.length).map((o) => JSON.parse(o.stdout).ips.map((ip: { address: string }) => ip.address.split('/')[0]));
    const given = adds.flat();
    expect(new Set(given).size).toBe(given.length);
    expect(given.length).toBe(300);

    const { reservations, indexed } = inspect(join(dataDir, 'stress'));
    const expected = new Map(fresh.flatMap((id, i) => adds[i]!.map((a: string) => [a, `${id}|eth0`] as [string, string])));
    expect(new Map([...reservations].sort())).toEqual(new Map([...expected].sort()));
    expect(new Map([...indexed].sort())).toEqual(new Map([...expected].sort()));
    expect(readdirSync(join(dataDir, 'stress/.tscni/tmp'))).toEqual([]);
  });

  it('survives SIGKILL at random points of 120 ADDs: the store stays consistent and GC reclaims the rest', async () => {
    const dataDir = s.tmpdir();
    const c = conf(dataDir, '1.1.0');
    const ids = Array.from({ length: 120 }, (_, i) => `${s.prefix}-k${i}`);
    // Kill points spread over a whole ADD's life on this machine, as measured on a warm-up batch.
    const BATCH = 10;
    const t0 = performance.now();
    const warm = await Promise.all(Array.from({ length: BATCH }, (_, i) => start('ADD', `${s.prefix}-w${i}`, c)));
    const life = performance.now() - t0;
    expect(warm.every((o) => o.status === 0)).toBe(true);
    const outcomes: AsyncRun[] = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      outcomes.push(...(await Promise.all(ids.slice(i, i + BATCH).map((id) => start('ADD', id, c, Math.random() * life * 1.2)))));
    }
    const completed = ids.filter((_, i) => outcomes[i]!.status === 0);
    const killed = ids.filter((_, i) => outcomes[i]!.signal === 'SIGKILL');
    expect(completed.length + killed.length).toBe(ids.length);
    expect(completed.length).toBeGreaterThan(0);
    expect(killed.length).toBeGreaterThan(0);

    const store = join(dataDir, 'stress');
    const before = inspect(store);
    // Every completed ADD holds exactly the addresses it returned; killed ones hold whole reservations or none.
    for (const [i, id] of ids.entries()) {
      if (outcomes[i]!.status !== 0) continue;
      for (const ip of JSON.parse(outcomes[i]!.stdout).ips) expect(before.reservations.get(ip.address.split('/')[0])).toBe(`${id}|eth0`);
    }
    for (const owner of before.reservations.values()) expect(owner).toMatch(new RegExp(`^${s.prefix}-[kw]\\d+\\|eth0$`));

    // The runtime still knows the even-numbered completed containers; GC frees everything else.
    const valid = completed.filter((_, i) => i % 2 === 0);
    const gc = execPlugin(PLUGIN, { CNI_COMMAND: 'GC', CNI_PATH: OUR_BIN }, { ...c, 'cni.dev/valid-attachments': valid.map((id) => ({ containerID: id, ifname: 'eth0' })) });
    expect(gc.status, gc.stdout).toBe(0);
    const after = inspect(store);
    const owners = new Set([...after.reservations.values()].map((o) => o.split('|')[0]));
    expect([...owners].sort()).toEqual([...valid].sort());
    expect(after.reservations.size).toBe(valid.length * 2);
    expect(new Map([...after.indexed].sort())).toEqual(new Map([...after.reservations].sort()));
    expect(readdirSync(join(store, '.tscni/tmp'))).toEqual([]);

    // DEL finds every remaining reservation through the index; the store ends empty.
    for (const id of valid) expect(execPlugin(PLUGIN, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: id, CNI_IFNAME: 'eth0', CNI_PATH: OUR_BIN }, c).status).toBe(0);
    expect(inspect(store).reservations.size).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/cni/log.ts';
import { Undo } from '../../lib/cni/undo.ts';

describe('Undo', () => {
  it('runs compensations last-in-first-out when not committed, and never throws', async () => {
    const order: string[] = [];
    let undo!: Undo;
    await expect(
      (async () => {
        await using u = new Undo(silentLogger);
        undo = u;
        u.push('a', () => order.push('a'));
        u.push('b', () => {
          throw new Error('boom');
        });
        u.push('c', async () => order.push('c'));
        throw new Error('step failed');
      })(),
    ).rejects.toThrow('step failed');
    expect(order).toEqual(['c', 'a']);
    expect(undo.failures).toEqual(['b: boom']);
  });

  it('does nothing once committed', async () => {
    const order: string[] = [];
    {
      await using u = new Undo(silentLogger);
      u.push('a', () => order.push('a'));
      u.commit();
    }
    expect(order).toEqual([]);
  });
});

describe('Undo fault injection (TSCNI_FAULT)', () => {
  it('throws at the step whose label starts with the fault, with its inverse already pushed', async () => {
    const order: string[] = [];
    await expect(
      (async () => {
        await using u = new Undo(silentLogger, 'delete veth');
        u.push('release IPAM', () => order.push('ipam'));
        u.push('delete veth1234', () => order.push('veth'));
        u.push('never reached', () => order.push('never'));
      })(),
    ).rejects.toThrow('injected fault at step "delete veth1234"');
    expect(order).toEqual(['veth', 'ipam']);
  });

  it('"commit" fails after every step, so all of them are undone', async () => {
    const order: string[] = [];
    await expect(
      (async () => {
        await using u = new Undo(silentLogger, 'commit');
        u.push('a', () => order.push('a'));
        u.push('b', () => order.push('b'));
        u.commit();
      })(),
    ).rejects.toThrow('injected fault at step "commit"');
    expect(order).toEqual(['b', 'a']);
  });
});

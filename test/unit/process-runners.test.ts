import { describe, expect, it } from 'vitest';
import { ProcessError, type ProcessOutput } from '../../lib/exec.ts';
import { disableTxChecksum } from '../../lib/ip/ethtool.ts';
import { batchError, batchFailures, bridgeBatch, IpBatchError, ipBatch, tcBatch, toolArgv } from '../../lib/ip/ip.ts';
import { parseReadBatch, readBatch, splitJsonArrays } from '../../lib/ip/read-batch.ts';
import { readSysctlsIn, writeSysctlsIn } from '../../lib/ip/sysctl.ts';
import { deleteUdpConntrack } from '../../lib/netfilter/conntrack.ts';
import { fakeExec } from '../support/fake-io.ts';

const out = (o: Partial<ProcessOutput>): ProcessOutput => ({ argv: ['ip'], status: 0, signal: null, stdout: '', stderr: '', ...o });

// stderr as iproute2 6.1 prints it, copied from real runs
const FORCED_STDERR = 'Device "x0" does not exist.\nCommand failed -:2\nCannot find device "x0"\nCommand failed -:3\n';

describe('toolArgv: ip, bridge and tc enter a namespace alike', () => {
  it('-n NAME for a /run/netns name, nsenter for any other path, the tool alone here', () => {
    expect(toolArgv('bridge', '/run/netns/cni-1')).toEqual(['bridge', '-n', 'cni-1']);
    expect(toolArgv('tc', '/proc/4194001/ns/net')).toEqual(['nsenter', '--net=/proc/4194001/ns/net', 'tc']);
    expect(toolArgv('tc')).toEqual(['tc']);
  });
});

describe('batchFailures: each failing line with what the tool said before it', () => {
  it('reads one block per failing line of a -force run', () => {
    const lines = ['link show dev lo', 'link show dev x0', 'route show dev x0', 'addr show dev lo'];
    expect(batchFailures(lines, FORCED_STDERR)).toEqual([
      { line: 2, command: 'link show dev x0', reason: 'Device "x0" does not exist.' },
      { line: 3, command: 'route show dev x0', reason: 'Cannot find device "x0"' },
    ]);
  });

  it('joins several messages of one line; no "Command failed" is no failure', () => {
    expect(batchFailures(['a', 'vlan add dev v1 vid 5'], 'RTNETLINK answers: Operation not supported\nwarning\nCommand failed -:2\n')).toEqual([
      { line: 2, command: 'vlan add dev v1 vid 5', reason: 'RTNETLINK answers: Operation not supported; warning' },
    ]);
    expect(batchFailures(['a'], 'nsenter: cannot open /proc/9/ns/net: No such file or directory\n')).toEqual([]);
  });
});

describe('batchError: one typed error for ip, bridge and tc', () => {
  it('names the tool, the failing line and the reason', () => {
    const err = batchError('bridge', ['fdb append 00:00:00:00:00:00 dev vx dst 10.0.0.2'], out({ status: 1, stderr: 'RTNETLINK answers: No such device\nCommand failed -:1\n' }));
    expect(err).toBeInstanceOf(IpBatchError);
    expect([err.message, (err as IpBatchError).tool, (err as IpBatchError).failedLine]).toEqual(['bridge: "fdb append 00:00:00:00:00:00 dev vx dst 10.0.0.2": RTNETLINK answers: No such device', 'bridge', 1]);
  });

  it('is the ProcessError when no line failed (the tool or the namespace did not start)', () => {
    const err = batchError('tc', ['qdisc show'], out({ argv: ['tc', '-batch', '-'], status: 1, stderr: 'Cannot open network namespace "x": No such file or directory\n' }));
    expect(err).toBeInstanceOf(ProcessError);
    expect(err.message).toBe('tc -batch -: exit 1: Cannot open network namespace "x": No such file or directory');
  });
});

describe('toolBatch: ip, bridge and tc batches in one spawn each', () => {
  it('argv per tool and options; input is the lines; nothing is spawned for no lines', async () => {
    const exec = fakeExec();
    await ipBatch(exec, ['link set lo up'], { netns: '/run/netns/n1', json: true });
    await bridgeBatch(exec, ['vlan del dev v1 vid 1']);
    await tcBatch(exec, ['qdisc del dev v1 root'], { force: true });
    await tcBatch(exec, []);
    expect(exec.spawns.map((s) => [s.argv.join(' '), s.options?.input])).toEqual([
      ['ip -n n1 -json -batch -', 'link set lo up\n'],
      ['bridge -batch -', 'vlan del dev v1 vid 1\n'],
      ['tc -force -batch -', 'qdisc del dev v1 root\n'],
    ]);
  });

  it('a failed line throws the batch error unless forced', async () => {
    const exec = fakeExec(() => ({ status: 1, stderr: 'Error: Exclusivity flag on, cannot modify.\nCommand failed -:2\n' }));
    const lines = ['qdisc add dev v1 root handle 1: tbf rate 8bit burst 1b latency 25ms', 'qdisc add dev v1 handle ffff: ingress'];
    await expect(tcBatch(exec, lines)).rejects.toThrow('tc: "qdisc add dev v1 handle ffff: ingress": Error: Exclusivity flag on, cannot modify.');
    await expect(tcBatch(exec, lines, { force: true })).resolves.toBe('');
  });
});

describe('readBatch: several show reads in one spawn', () => {
  const LINK = '[{"ifindex":1,"ifname":"lo"}]';
  const ADDR = '[{"ifindex":1,"ifname":"lo","addr_info":[]}]';

  it('hands each array to its line; a missing object reads as []', () => {
    const lines = ['link show dev lo', 'link show dev x0', 'route show dev x0', 'addr show dev lo'];
    expect(parseReadBatch('ip', lines, out({ status: 1, stdout: `${LINK}\n${ADDR}\n`, stderr: FORCED_STDERR }))).toEqual([
      [{ ifindex: 1, ifname: 'lo' }],
      [],
      [],
      [{ ifindex: 1, ifname: 'lo', addr_info: [] }],
    ]);
  });

  it('any other failure throws the typed error of its line', () => {
    const lines = ['fdb show dev vx', 'fdb show dev x0'];
    const stderr = 'Error: something else\nCommand failed -:1\nCannot find device "x0"\nCommand failed -:2\n';
    expect(() => parseReadBatch('bridge', lines, out({ status: 1, stderr }))).toThrow('bridge: "fdb show dev vx": Error: something else');
    expect(() => parseReadBatch('ip', ['addr show'], out({ status: 1, stderr: 'nsenter: cannot open /x: No such file or directory\n' }))).toThrow(ProcessError);
  });

  it('refuses output that does not match the reads', () => {
    expect(() => parseReadBatch('tc', ['qdisc show dev a', 'qdisc show dev b'], out({ stdout: '[]\n' }))).toThrow('tc -json -batch: 1 arrays for 2 successful reads');
  });

  it('spawns TOOL [-d] -json -force -batch - once, in the namespace asked', async () => {
    const exec = fakeExec(() => ({ stdout: '[]\n[]\n' }));
    expect(await readBatch(exec, ['qdisc show dev a', 'qdisc show dev b'], { tool: 'tc' })).toEqual([[], []]);
    const none = fakeExec();
    expect(await readBatch(none, [])).toEqual([]);
    expect(none.spawns).toEqual([]);
    const one = fakeExec(() => ({ stdout: LINK }));
    await readBatch(one, ['link show dev lo'], { netns: '/run/netns/n1', details: true });
    expect(one.spawns.map((s) => s.argv.join(' '))).toEqual(['ip -n n1 -d -json -force -batch -']);
  });

  it('splits arrays by line, so a "][" inside a string stays whole', () => {
    expect(splitJsonArrays('[{"ifalias":"a] [b"}]\n[]\n')).toEqual([[{ ifalias: 'a] [b' }], []]);
    expect(() => splitJsonArrays('{"nftables":[]}\n')).toThrow(/other than arrays/);
  });
});

describe('sysctls in a namespace: one `sysctl` spawn, paths checked first', () => {
  it('reads and writes through nsenter sysctl with -- before the paths', async () => {
    const exec = fakeExec((argv) => ({ stdout: argv.includes('-n') ? '1\n0\n' : '' }));
    expect(await readSysctlsIn(exec, '/proc/4194007/ns/net', ['net/ipv4/ip_forward', 'net/ipv4/conf/eth0.100/rp_filter'])).toEqual({
      'net/ipv4/ip_forward': '1',
      'net/ipv4/conf/eth0.100/rp_filter': '0',
    });
    await writeSysctlsIn(exec, '/proc/4194007/ns/net', [{ path: 'net/core/somaxconn', value: '777' }]);
    expect(exec.spawns.map((s) => s.argv.join(' '))).toEqual([
      'nsenter --net=/proc/4194007/ns/net sysctl -n -- net/ipv4/ip_forward net/ipv4/conf/eth0.100/rp_filter',
      'nsenter --net=/proc/4194007/ns/net sysctl -q -w -- net/core/somaxconn=777',
    ]);
  });

  it('refuses a path outside net/, with "..", "=" or a newline, and a value with a newline, before spawning', async () => {
    const exec = fakeExec();
    for (const path of ['kernel/panic', 'net/../kernel/panic', 'net/a=b', 'net/a\nb', 'net//x', 'net']) {
      await expect(readSysctlsIn(exec, '/proc/4194007/ns/net', [path])).rejects.toThrow(/refusing sysctl/);
    }
    await expect(writeSysctlsIn(exec, '/proc/4194007/ns/net', [{ path: 'net/core/somaxconn', value: '1\n2' }])).rejects.toThrow(/refusing sysctl/);
    expect(exec.spawns).toEqual([]);
  });

  it('a failed sysctl is the ProcessError with its stderr', async () => {
    const exec = fakeExec(() => ({ status: 255, stderr: 'sysctl: cannot stat /proc/sys/net/x: No such file or directory\n' }));
    await expect(writeSysctlsIn(exec, '/proc/4194007/ns/net', [{ path: 'net/x', value: '1' }])).rejects.toThrow(ProcessError);
  });
});

describe('the other tools: argv only from checked values', () => {
  it('conntrack: one port per spawn, exit 1 (nothing matched) is fine, a bad port is refused', async () => {
    const exec = fakeExec(() => ({ status: 1 }));
    await deleteUdpConntrack(exec, 5353);
    expect(exec.spawns.map((s) => s.argv.join(' '))).toEqual(['conntrack -D -p udp --orig-port-dst 5353']);
    for (const bad of [0, 65536, 1.5, Number.NaN]) await expect(deleteUdpConntrack(exec, bad)).rejects.toThrow(/refusing conntrack port/);
  });

  it('ethtool: a device name that is no interface name or reads as an option is refused', async () => {
    const exec = fakeExec();
    await disableTxChecksum(exec, 'vxlan0');
    expect(exec.spawns.map((s) => s.argv.join(' '))).toEqual(['ethtool -K vxlan0 tx-checksum-ip-generic off']);
    for (const bad of ['-s', 'a b', '', 'x'.repeat(16)]) await expect(disableTxChecksum(exec, bad)).rejects.toThrow(/refusing device name/);
  });
});

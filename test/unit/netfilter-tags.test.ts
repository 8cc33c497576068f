import { describe, expect, it } from 'vitest';
import { attachmentHash } from '../../lib/digest.ts';
import { parseIptablesSave, quoteComment, savedComment } from '../../lib/netfilter/iptables.ts';
import { hashTag, hashTagAttachment, parseReferenceTag, referenceTag, selectsHash } from '../../lib/netfilter/tags.ts';

describe('reference tags (iptables comments the reference plugins write)', () => {
  it("writes bridge's and portmap's shapes and reads them back from iptables-save text", () => {
    expect(referenceTag('masq', 'net1', 'c1')).toBe('name: "net1" id: "c1"');
    expect(referenceTag('dnat', 'net1', 'c1')).toBe('dnat name: "net1" id: "c1"');
    const saved = parseIptablesSave([
      `-A POSTROUTING -s 10.0.0.2/32 -m comment --comment ${quoteComment(referenceTag('masq', 'a"b', 'c1'))} -j CNI-x`,
      `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment ${quoteComment(referenceTag('dnat', 'net1', 'c.2'))} -j CNI-DN-x`,
    ].join('\n'));
    expect(saved.rules.map((r) => parseReferenceTag(savedComment(r.spec)))).toEqual([
      { kind: 'masq', network: 'a"b', containerId: 'c1' },
      { kind: 'dnat', network: 'net1', containerId: 'c.2' },
    ]);
  });
  it('anything else is no tag', () => {
    for (const c of [undefined, '', 'CNI portfwd masquerade mark', 'name: "n"', 'name: "n" id: "c" extra', 'xdnat name: "n" id: "c"', String.raw`name: "\x41" id: "c"`]) {
      expect(parseReferenceTag(c), String(c)).toBeUndefined();
    }
  });
});

describe('hash tags (ours)', () => {
  it('give the attachment hash back only for the same kind and network', () => {
    const tag = hashTag('tscni-firewall', 'net1', 'c1');
    expect(hashTagAttachment(tag, 'tscni-firewall', 'net1')).toBe(attachmentHash('net1', 'c1'));
    expect(hashTagAttachment(tag, 'tscni', 'net1')).toBeUndefined();
    expect(hashTagAttachment(tag, 'tscni-firewall', 'net2')).toBeUndefined();
    expect(hashTagAttachment(undefined, 'tscni', 'net1')).toBeUndefined();
  });
  it('selectors pick these attachments, or all but these', () => {
    const [a, b] = [attachmentHash('n', 'a'), attachmentHash('n', 'b')];
    expect([a, b].map(selectsHash('n', { only: ['a'] }))).toEqual([true, false]);
    expect([a, b].map(selectsHash('n', { allBut: ['a'] }))).toEqual([false, true]);
  });
});

import { ipEqual, nextIp, type Ip } from '../../lib/net/ip.ts';
import { rangeContains, type RangeSet } from './config.ts';

/**
 * The addresses of a set in the order the reference tries them: round-robin from the one after
 * `lastReserved` (when the set holds it), else from the first range's start; ranges in order,
 * wrapping once around; gateways skipped. Lazy, so a huge IPv6 range costs nothing.
 */
export function* candidates(set: RangeSet, lastReserved: Ip | undefined): Generator<Ip> {
  const holder = lastReserved ? set.findIndex((r) => rangeContains(r, lastReserved)) : -1;
  let index = holder < 0 ? 0 : holder;
  let cur: Ip | undefined = holder < 0 ? undefined : lastReserved;
  let first: Ip | undefined;
  for (;;) {
    let range = set[index]!;
    if (cur === undefined) {
      cur = first = range.start;
    } else {
      if (ipEqual(cur, range.end)) {
        index = (index + 1) % set.length;
        range = set[index]!;
        cur = range.start;
      } else {
        cur = nextIp(cur)!;
      }
      if (first === undefined) first = cur;
      else if (ipEqual(cur, first)) return;
    }
    if (!ipEqual(cur, range.gateway)) yield cur;
  }
}

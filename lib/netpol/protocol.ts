/**
 * The transport protocols NetworkPolicy knows, without the schemas of objects.ts: membership.ts,
 * which the plugin's ADD loads, needs this and must not pull zod onto a plugin's start-up path.
 *
 * Public surface:
 *   type Protocol = 'TCP' | 'UDP' | 'SCTP'
 *   isKnownProtocol(p)      anything else is kept in a policy but matches nothing
 */
export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export const isKnownProtocol = (p: string): p is Protocol => p === 'TCP' || p === 'UDP' || p === 'SCTP';

/**
 * The netpol node's public surface for the operator command (`tscni policy`): its config, one
 * sync, the watcher, and the cluster as the node sees it (for `ls` and `explain`). The lock, the
 * applied record and the index stay behind it (sync.ts); ADD uses the same ones.
 */
export { resolveNetpol, type Netpol } from './conf.ts';
export { addressesOf, readCluster, syncOnce, watch, type ClusterView } from './sync.ts';

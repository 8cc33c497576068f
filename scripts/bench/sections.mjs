// Every benchmark section, in the order they run and appear in BENCHMARKS.md. To add one, write
// scripts/bench/<id>.mjs exporting { id, title, notes?, run(ctx) → rows } and list it here.
import version from './version.mjs';
import loopback from './loopback.mjs';
import bridge from './bridge.mjs';
import chain from './chain.mjs';
import vxlan from './vxlan.mjs';
import hostLocal from './host-local.mjs';
import resources from './resources.mjs';
import targets from './targets.mjs';
import portmap from './portmap.mjs';
import netpol from './netpol.mjs';

export const SECTIONS = [version, loopback, bridge, chain, vxlan, hostLocal, portmap, netpol, resources, targets];

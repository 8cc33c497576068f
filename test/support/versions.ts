import { atLeast, SUPPORTED_VERSIONS } from '../../lib/cni/versions.ts';

/**
 * Spec versions for tests to loop over, all taken from the core's list (which
 * test/unit/cni-versions.test.ts pins literally): a new version reaches every loop from there.
 */

/** The supported versions from `min` on, and before `below` when given, oldest first. */
export const versions = (min: string, below?: string): string[] => SUPPORTED_VERSIONS.filter((v) => atLeast(v, min) && (below === undefined || !atLeast(v, below)));

export const ALL_VERSIONS = versions('0.1.0');
/** What the plugin tests run each case at: 0.3.1 on (results with interfaces; 0.3.0 has 0.3.1's shapes). */
export const PLUGIN_VERSIONS = versions('0.3.1');
/** The versions that have CHECK. */
export const WITH_CHECK = versions('0.4.0');
/** What the reference plugins (containernetworking-plugins 1.1.1) speak: up to 1.0.0. */
export const REFERENCE_VERSIONS = versions('0.1.0', '1.1.0');

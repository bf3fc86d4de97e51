import { TIER_NAMES, type TierName } from './result-types.js';

/** A node's tier as result.json names it; a tier it does not know is the single server's. */
export const asTier = (t: string): TierName => ((TIER_NAMES as readonly string[]).includes(t) ? (t as TierName) : 'single');

/** Rounding for published figures: one, three or six decimals, as result files print them. */
export const round1 = (x: number): number => Math.round(x * 10) / 10;
export const round3 = (x: number): number => Math.round(x * 1000) / 1000;
export const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

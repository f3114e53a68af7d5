/**
 * The original Python Lambda's two boxes. A module of its own, without zod, so that code the Lambda bundles
 * (storage/resolve.ts) can name them without pulling the config schema into every cold start.
 */
export const DEFAULT_SIZES = {
  thumb: { width: 128, height: 128, fit: 'inside', position: 'center' },
  medium: { width: 512, height: 512, fit: 'inside', position: 'center' },
} as const;

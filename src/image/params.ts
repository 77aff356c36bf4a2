/**
 * Image parameters from the query string (DESIGN.md "Image parameters"). Placeholder types; the
 * parser, canonical form, negotiation and signing live beside this file.
 */
export const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
export type Fit = (typeof FITS)[number];
export const FORMATS = ['auto', 'avif', 'webp', 'jpeg', 'png'] as const;
export type RequestedFormat = (typeof FORMATS)[number];
export type OutputFormat = Exclude<RequestedFormat, 'auto'>;

export interface ImageParams {
  w?: number;
  h?: number;
  dpr?: number;
  fit?: Fit;
  fmt?: RequestedFormat;
  q?: number;
}

import { en, type Texts } from './en.ts';

export type { Texts };

/** The texts of one language; English is the only one for now. */
export function textsFor(_language = 'en'): Texts {
  return en;
}

/**
 * Fills `{name}` placeholders. The result is plain text: templates escape it on output like
 * any other value, so a filled-in name cannot inject markup.
 */
export function fillText(text: string, values: Readonly<Record<string, string | number>> = {}): string {
  return text.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole));
}

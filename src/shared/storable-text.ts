/**
 * Text PostgreSQL cannot store: U+0000 (text and jsonb both refuse it) and lone UTF-16
 * surrogates (not Unicode scalar values; jsonb refuses their \uD800 escapes, UTF-8 cannot
 * encode them). Such text is never a valid parameter, username or id, so it is refused at the
 * boundary as invalid input instead of reaching the database and coming back as a 500.
 */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000') && (value as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * The name of the first parameter (or parameter name) holding unstorable text, walking arrays
 * (duplicate parameters) and objects (JSON bodies); undefined when everything can be stored.
 */
export function findUnstorable(params: unknown, name = ''): string | undefined {
  if (typeof params === 'string') return isStorableText(params) ? undefined : name || '(value)';
  if (Array.isArray(params)) {
    for (const item of params) {
      const found = findUnstorable(item, name);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (params === null || typeof params !== 'object') return undefined;
  for (const [key, value] of Object.entries(params)) {
    if (!isStorableText(key)) return '(parameter name)';
    const found = findUnstorable(value, key);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The value of cookie `name` in a Cookie header (RFC 6265 `name=value; name2=value2`), or
 * undefined. Surrounding double quotes are removed; the first occurrence wins.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header === "") return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(";", start);
    if (end === -1) end = header.length;
    const eq = header.indexOf("=", start);
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
        value = value.slice(1, -1);
      }
      return value;
    }
    start = end + 1;
  }
  return undefined;
}

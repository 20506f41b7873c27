/**
 * Why a request target's path may mean something else to the upstream than to riskgate's route
 * match, or undefined when it cannot. Envoy's `normalize_path` (RFC 3986) leaves these as they
 * are, and upstreams disagree about them: an escaped slash or backslash (`..%2f`, `%5c`) that one
 * server decodes into a separator, a raw backslash that Windows servers and some frameworks read
 * as one, a `;` path parameter that Java servers cut off (`/admin..;/x`), percent-encoding that
 * decodes twice (`%252f`) or into overlong or broken UTF-8 (`%c0%af`), a `#` that a client never
 * sends, escaped control characters, and broken percent-encoding. `raw` is the target as
 * received: path, then query and fragment (only the path is read for escapes; a `#` anywhere).
 */
export function pathAmbiguity(raw: string): string | undefined {
  if (!SUSPECT.test(raw)) return undefined;
  if (raw.includes("#")) return "a raw # in the request target";
  const q = raw.indexOf("?");
  const path = q === -1 ? raw : raw.slice(0, q);
  if (path.includes("\\")) return "a backslash in the path";
  if (path.includes(";")) return "a ; path parameter";
  if (!path.includes("%")) return undefined;
  if (BAD_ESCAPE.test(path)) return "broken percent-encoding";
  if (ESCAPED_SLASH.test(path)) return "an escaped slash or backslash (%2F, %5C)";
  if (DOUBLE_ENCODED.test(path)) return "double percent-encoding (%25 before two hex digits)";
  if (ESCAPED_CONTROL.test(path)) return "an escaped control character";
  for (const run of path.match(ESCAPE_RUNS) ?? []) {
    if (!isUtf8(run)) return "percent-encoded bytes that are not UTF-8 (overlong or broken)";
  }
  return undefined;
}

const SUSPECT = /[%\\;#]/;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
const ESCAPED_SLASH = /%(?:2f|5c)/i;
const DOUBLE_ENCODED = /%25[0-9A-Fa-f]{2}/;
const ESCAPED_CONTROL = /%(?:[01][0-9A-Fa-f]|7f)/i;
/** Consecutive escapes of bytes at or above 0x80: one UTF-8 character is one such run. */
const ESCAPE_RUNS = /(?:%[89A-Fa-f][0-9A-Fa-f])+/g;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** True when a run of `%XX` escapes decodes as strict UTF-8 (overlong forms are errors there). */
function isUtf8(run: string): boolean {
  const bytes = new Uint8Array(run.length / 3);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = Number.parseInt(run.slice(i * 3 + 1, i * 3 + 3), 16);
  }
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

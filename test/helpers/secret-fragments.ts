/**
 * Pieces of a secret (a token, an API key) long enough to identify it, had a response or a log
 * line echoed it whole or in part: the secret, its parts between separators, and every run of
 * 12 characters of it at a step of 6.
 */
export function fragments(secret: string): string[] {
  const parts = secret.split(/[.=+/_]/).filter((part) => part.length >= 12);
  const runs: string[] = [];
  for (let i = 0; i + 12 <= secret.length; i += 6) runs.push(secret.slice(i, i + 12));
  return [...new Set([secret, ...parts, ...runs])];
}

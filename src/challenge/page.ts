import { createHash } from "node:crypto";
import { type CaptchaProvider, PROVIDERS } from "./siteverify.js";

/** Where riskgate's HTTP listener serves the challenge page (GET) and takes answers (POST). */
export const CHALLENGE_PATH = "/.riskgate/challenge";

/** A page riskgate answers with: HTML and the headers that keep it unframed and uncached. */
export interface Page {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );
}

const STYLE = `body{margin:0;font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330}
main{max-width:30rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 2px 12px #0001}
h1{font-size:1.3rem;margin:0 0 .5rem}p{margin:.5rem 0}.muted{color:#5b6474;font-size:.9rem}
progress{width:100%;height:.6rem}button{font:inherit;padding:.5rem 1.2rem;margin-top:1rem}`;

/**
 * The proof-of-work solver: SHA-256 of `nonce:counter` through WebCrypto, in batches, until
 * the digest has `bits` leading zero bits; then the form posts the counter. No library, no CDN.
 */
const POW_SCRIPT = `(async()=>{const f=document.getElementById("f"),s=document.getElementById("s"),p=document.getElementById("p");
const n=f.dataset.nonce,b=Number(f.dataset.bits),e=new TextEncoder();
if(!self.crypto||!crypto.subtle){s.textContent="This check needs a secure (HTTPS) page.";return}
const ok=d=>{const u=new Uint8Array(d);let r=b,i=0;while(r>=8){if(u[i++]!==0)return false;r-=8}return r===0||(u[i]>>(8-r))===0};
const expect=2**b;let c=0;const t0=performance.now();
for(;;){const batch=[];for(let k=0;k<256;k++)batch.push(crypto.subtle.digest("SHA-256",e.encode(n+":"+(c+k))));
const ds=await Promise.all(batch);const hit=ds.findIndex(ok);
if(hit>=0){const a=c+hit;document.getElementById("a").value=String(a);
s.textContent="Done in "+Math.round(performance.now()-t0)+" ms ("+(a+1).toLocaleString()+" hashes). Taking you back\\u2026";
p.value=p.max;f.submit();return}
c+=256;p.value=Math.min(p.max*0.95,p.max*c/expect);s.textContent="Working\\u2026 "+c.toLocaleString()+" hashes"}})();`;

const POW_SCRIPT_HASH = createHash("sha256").update(POW_SCRIPT).digest("base64");

const COMMON_HEADERS: readonly (readonly [string, string])[] = [
  ["content-type", "text/html; charset=utf-8"],
  ["cache-control", "no-store"],
  ["x-frame-options", "DENY"],
  ["referrer-policy", "no-referrer"],
  ["x-content-type-options", "nosniff"],
];

/** The proof-of-work page for a signed challenge. */
export function powPage(token: string, nonce: string, bits: number): Page {
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">
<title>Checking your browser</title><style>${STYLE}</style></head><body><main>
<h1>Checking that you are a person</h1>
<p>Your browser is solving a small puzzle. This takes a moment and needs no action from you.</p>
<progress id="p" max="100" value="0"></progress>
<p id="s" class="muted">Starting\u2026</p>
<form id="f" method="post" action="${CHALLENGE_PATH}" data-nonce="${escapeHtml(nonce)}" data-bits="${bits}">
<input type="hidden" name="c" value="${escapeHtml(token)}"><input type="hidden" name="answer" id="a" value="">
<noscript><p><strong>This check needs JavaScript.</strong> Turn it on and reload the page.</p></noscript>
</form>
<p class="muted">Protected by riskgate \u00b7 proof of work, ${bits} bits</p>
</main><script>${POW_SCRIPT}</script></body></html>`;
  return {
    status: 200,
    headers: [
      ...COMMON_HEADERS,
      [
        "content-security-policy",
        `default-src 'none'; script-src 'sha256-${POW_SCRIPT_HASH}'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      ],
    ],
    body,
  };
}

/** The CAPTCHA page: the provider's widget, whose answer the form posts back to riskgate. */
export function captchaPage(token: string, provider: CaptchaProvider, siteKey: string): Page {
  const p = PROVIDERS[provider];
  const origin = new URL(p.script).origin;
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">
<title>Checking your browser</title><style>${STYLE}</style>
<script src="${p.script}" async defer></script></head><body><main>
<h1>Checking that you are a person</h1>
<form id="f" method="post" action="${CHALLENGE_PATH}">
<input type="hidden" name="c" value="${escapeHtml(token)}">
<div class="${p.widgetClass}" data-sitekey="${escapeHtml(siteKey)}"></div>
<button type="submit">Continue</button>
</form></main></body></html>`;
  return {
    status: 200,
    headers: [
      ...COMMON_HEADERS,
      [
        "content-security-policy",
        `default-src 'none'; script-src ${origin} https://*.hcaptcha.com https://www.gstatic.com; frame-src ${origin} https://*.hcaptcha.com https://www.google.com; connect-src ${origin} https://*.hcaptcha.com; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      ],
    ],
    body,
  };
}

/** A short page saying what happened, with a link to try again (the original URL). */
export function messagePage(status: number, title: string, text: string, retry?: string): Page {
  const link = retry === undefined ? "" : `<p><a href="${escapeHtml(retry)}">Try again</a></p>`;
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title>
<style>${STYLE}</style></head><body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>${link}</main></body></html>`;
  return {
    status,
    headers: [
      ...COMMON_HEADERS,
      [
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      ],
    ],
    body,
  };
}

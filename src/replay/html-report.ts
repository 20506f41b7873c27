import type { VerdictKind } from "../access/verdict.js";
import { KINDS, type Tally } from "./summary.js";
import { type Bucket, type Comparison, describeChange } from "./what-if.js";

const COLORS: Record<VerdictKind, string> = {
  allow: "#3a9d5d",
  challenge: "#e0a526",
  throttle: "#7b61c9",
  deny: "#d64545",
};

export interface HtmlReportInput {
  readonly tally: Tally;
  /** The decisions of both policies (for a plain replay: the one policy against itself). */
  readonly comparison: Comparison;
  readonly policy: string;
  /** The old policy of a what-if (absent for a plain replay). */
  readonly against?: string;
}

/**
 * A self-contained HTML report (inline CSS and SVG, no scripts, no external resources):
 * decisions over time for each policy as stacked bars, what changed by transition, and the
 * flips by reason code as a bar chart, with the summary tables.
 */
export function renderHtmlReport(input: HtmlReportInput): string {
  const { tally, comparison: c } = input;
  const whatIf = input.against !== undefined;
  const keys = [...new Set([...c.series.old.keys(), ...c.series.new.keys()])].sort((a, b) => a - b);
  // one scale for both policies, so their bars compare
  const max = Math.max(
    1,
    ...keys.map((k) => Math.max(total(c.series.old.get(k)), total(c.series.new.get(k)))),
  );
  const parts: string[] = [];
  parts.push(`<h1>riskgate ${whatIf ? "what-if" : "replay"} report</h1>`);
  parts.push(
    `<p>${whatIf ? `new policy <code>${esc(input.policy)}</code> against old <code>${esc(input.against ?? "")}</code>` : `policy <code>${esc(input.policy)}</code>`}: ${tally.total} decisions from ${esc(tally.first ?? "-")} to ${esc(tally.last ?? "-")}.</p>`,
  );
  if (whatIf) {
    const changed = [...c.transitions.values()].reduce((a, b) => a + b, 0);
    parts.push(
      `<p class="verdict ${c.newAllows > 0 ? "bad" : "good"}">${changed} decisions change; ${c.newAllows} requests the old policy refused are allowed by the new one.</p>`,
    );
  }
  parts.push(legend());
  if (whatIf) {
    parts.push(
      "<h2>Decisions over time: old policy</h2>",
      timeline("timeline-old", keys, c.series.old, max),
    );
  }
  parts.push(
    `<h2>Decisions over time${whatIf ? ": new policy" : ""}</h2>`,
    timeline("timeline-new", keys, c.series.new, max),
  );
  if (whatIf) {
    parts.push("<h2>Changes</h2>", mapTable("change", c.transitions));
    const reasons = [...c.byReason.entries()]
      .map(([code, row]) => [code, [...row.values()].reduce((a, b) => a + b, 0)] as const)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    parts.push(
      "<h2>Flips by reason (+ new, - gone, ~ other points)</h2>",
      barChart("flips-by-reason", reasons),
    );
    parts.push("<h2>Examples</h2>", examples(c));
  }
  parts.push("<h2>Decisions by route</h2>", kindTable("route", tally.byRoute));
  parts.push("<h2>Decisions by tier</h2>", kindTable("tier", tally.byTier));
  parts.push("<h2>Decisions by reason code</h2>", kindTable("reason code", tally.byReason));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>riskgate ${whatIf ? "what-if" : "replay"} report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}code{background:#f3f3f3;padding:0 3px}
.verdict{font-weight:600;padding:6px 10px;border-radius:4px}.bad{background:#fde2e2}.good{background:#e2f5e8}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
svg text{font:11px system-ui,sans-serif;fill:#444}
</style></head><body>
${parts.join("\n")}
</body></html>
`;
}

function legend(): string {
  return `<p class="legend">${KINDS.map((k) => `<span><i style="background:${COLORS[k]}"></i>${k}</span>`).join("")}</p>`;
}

/** Stacked bars of decisions per time bucket. */
function timeline(
  id: string,
  keys: readonly number[],
  series: ReadonlyMap<number, Bucket>,
  max: number,
): string {
  const width = 1000;
  const height = 220;
  const pad = { left: 50, bottom: 24, top: 8 };
  const plotH = height - pad.bottom - pad.top;
  const step = (width - pad.left) / Math.max(1, keys.length);
  const bars: string[] = [];
  keys.forEach((key, i) => {
    const b = series.get(key);
    if (b === undefined) return;
    let y = pad.top + plotH;
    for (const kind of KINDS) {
      if (b[kind] === 0) continue;
      const h = (b[kind] / max) * plotH;
      y -= h;
      bars.push(
        `<rect data-kind="${kind}" x="${(pad.left + i * step).toFixed(2)}" y="${y.toFixed(2)}" width="${Math.max(1, step * 0.9).toFixed(2)}" height="${Math.max(0.5, h).toFixed(2)}" fill="${COLORS[kind]}"><title>${new Date(key).toISOString()} ${kind}: ${b[kind]}</title></rect>`,
      );
    }
  });
  const first = keys[0];
  const last = keys[keys.length - 1];
  const axis = [
    `<line x1="${pad.left}" y1="${pad.top + plotH}" x2="${width}" y2="${pad.top + plotH}" stroke="#999"/>`,
    `<text x="${pad.left - 6}" y="${pad.top + 10}" text-anchor="end">${max}</text>`,
    `<text x="${pad.left - 6}" y="${pad.top + plotH}" text-anchor="end">0</text>`,
    first === undefined
      ? ""
      : `<text x="${pad.left}" y="${height - 6}">${new Date(first).toISOString()}</text>`,
    last === undefined || last === first
      ? ""
      : `<text x="${width}" y="${height - 6}" text-anchor="end">${new Date(last).toISOString()}</text>`,
  ];
  return `<svg class="chart" data-chart="${id}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="decisions over time">${axis.join("")}${bars.join("")}</svg>`;
}

/** Horizontal bars: one per label, longest first (the top 20). */
function barChart(id: string, rows: readonly (readonly [string, number])[]): string {
  const shown = rows.slice(0, 20);
  const width = 1000;
  const rowH = 22;
  const labelW = 300;
  const height = Math.max(rowH, shown.length * rowH) + 4;
  const max = Math.max(1, ...shown.map((r) => r[1]));
  const bars = shown.map(([label, n], i) => {
    const w = ((width - labelW - 60) * n) / max;
    const y = i * rowH + 2;
    const color = label.startsWith("+")
      ? COLORS.deny
      : label.startsWith("-")
        ? COLORS.allow
        : label.startsWith("~")
          ? COLORS.challenge
          : "#888";
    return `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${esc(label)}</text><rect data-bar="${esc(label)}" x="${labelW}" y="${y}" width="${Math.max(1, w).toFixed(2)}" height="${rowH - 6}" fill="${color}"></rect><text x="${(labelW + w + 6).toFixed(2)}" y="${y + 15}">${n}</text>`;
  });
  return `<svg class="chart" data-chart="${id}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="flips by reason">${bars.join("")}</svg>`;
}

function examples(c: Comparison): string {
  const rows: string[] = [];
  for (const [t, list] of c.examples) {
    for (const f of list) {
      rows.push(
        `<tr><td>${esc(t)}</td><td>${esc(f.request_id)}</td><td>${esc(f.time)}</td><td>${esc(f.route)}</td><td>${esc(f.tier)}</td><td>${f.oldScore} -> ${f.newScore}</td><td>${esc(describeChange(f).join(" "))}</td></tr>`,
      );
    }
  }
  return `<table><tr><th>change</th><th>request id</th><th>time</th><th>route</th><th>tier</th><th>score</th><th>reasons</th></tr>${rows.join("")}</table>`;
}

function mapTable(title: string, map: ReadonlyMap<string, number>): string {
  const rows = [...map.entries()].sort((a, b) => b[1] - a[1]);
  return `<table><tr><th>${esc(title)}</th><th>count</th></tr>${rows.map(([k, n]) => `<tr><td>${esc(k)}</td><td>${n}</td></tr>`).join("")}</table>`;
}

function kindTable(title: string, map: ReadonlyMap<string, Record<VerdictKind, number>>): string {
  const rows = [...map.entries()].sort((a, b) => total(b[1]) - total(a[1]));
  return `<table><tr><th>${esc(title)}</th>${KINDS.map((k) => `<th>${k}</th>`).join("")}<th>total</th></tr>${rows
    .map(
      ([key, row]) =>
        `<tr><td>${esc(key)}</td>${KINDS.map((k) => `<td>${row[k]}</td>`).join("")}<td>${total(row)}</td></tr>`,
    )
    .join("")}</table>`;
}

function total(b: Bucket | undefined): number {
  return b === undefined ? 0 : b.allow + b.challenge + b.throttle + b.deny;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

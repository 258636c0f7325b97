import { Command, InvalidArgumentError } from 'commander';
import { contextOf, integer } from '../command-kit';
import { cell, printJson, printLine, table } from '../output';

/*
 * The audit's answers, as far as they are shown here (the controller's AuditReport and
 * FindingPage: their modules bring the store along, which overlayctl does not need to compile).
 */
type FindingSubject = Record<string, string>;

interface AuditReport {
  generatedAt: string;
  revision: number;
  recommendations: { id: string; title: string; status: string; findings: { id: string; severity: string; subject: FindingSubject; evidence: string; since: string | null }[] }[];
}

interface FindingRecord {
  id: string;
  recommendation: string;
  severity: string;
  subject: FindingSubject;
  evidence: string;
  openedAt: string;
  closedAt: string | null;
}

interface FindingPage {
  evaluatedAt: string | null;
  items: FindingRecord[];
  nextCursor: string | null;
}

const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`/`--until`: an ISO 8601 time, or a duration before now (`90s`, `15m`, `2h`, `7d`); sent as ISO 8601. */
export function timeOption(now: () => number = Date.now): (raw: string) => string {
  return (raw) => {
    const ago = /^(\d{1,9})([smhd])$/.exec(raw);
    if (ago) {
      return new Date(now() - Number(ago[1]) * UNIT_MS[ago[2]]).toISOString();
    }
    if (/^\d{4}-\d{2}-\d{2}T/.test(raw) && !Number.isNaN(Date.parse(raw))) {
      return raw;
    }
    throw new InvalidArgumentError('give an ISO 8601 time (2025-01-31T12:00:00Z) or a duration before now (90s, 15m, 2h, 7d)');
  };
}

function subjectText(s: FindingSubject): string {
  const parts = Object.entries(s).map(([k, v]) => `${k.replace(/Id$/, '')}=${v}`);
  return parts.length ? parts.join(' ') : 'deployment';
}

export function auditCommand(): Command {
  const audit = new Command('audit').description('the NIST SP 800-125B audit of the live configuration');

  audit
    .command('report', { isDefault: true })
    .description('the 13 recommendations, each with its status and findings')
    .action(async (_opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      const report = await ctx.client.get<AuditReport>('/v1/audit');
      if (ctx.json) {
        return printJson(report);
      }
      printLine(`audit at revision ${report.revision}, ${report.generatedAt}`);
      printLine();
      printLine(
        table(report.recommendations, [
          { header: 'RECOMMENDATION', value: (r) => r.id },
          { header: 'STATUS', value: (r) => r.status },
          { header: 'FINDINGS', value: (r) => r.findings.length },
          { header: 'TITLE', value: (r) => r.title },
        ]),
      );
      for (const r of report.recommendations.filter((x) => x.findings.length)) {
        printLine();
        printLine(`${r.id} (${r.status}):`);
        for (const f of r.findings) {
          printLine(`  ${f.severity.padEnd(7)} ${cell(subjectText(f.subject))}${f.since ? `  since ${f.since}` : ''}`);
          printLine(`          ${cell(f.evidence)}`);
        }
      }
    });

  audit
    .command('findings')
    .description("the findings' history: when each finding opened and closed, newest first")
    .option('--since <time>', 'only findings open at or after this time: ISO 8601, or a duration ago (15m, 2h, 7d)', timeOption())
    .option('--until <time>', 'only findings opened at or before this time (same forms)', timeOption())
    .option('--state <state>', 'open or closed')
    .option('--recommendation <id>', 'only those of this recommendation, e.g. VM-FW-R2')
    .option('--host <id>', 'only those about this host')
    .option('--severity <severity>', 'high, medium, low, info or unknown')
    .option('--limit <n>', 'at most this many', integer(1, 1_000_000))
    .action(async (opts: { since?: string; until?: string; state?: string; recommendation?: string; host?: string; severity?: string; limit?: number }, command: Command) => {
      const ctx = contextOf(command);
      const query = { since: opts.since, until: opts.until, state: opts.state, recommendation: opts.recommendation, hostId: opts.host, severity: opts.severity };
      const items: FindingRecord[] = [];
      let evaluatedAt: string | null = null;
      let cursor: string | undefined;
      do {
        const limit = opts.limit === undefined ? 1000 : Math.min(1000, opts.limit - items.length);
        const page = await ctx.client.get<FindingPage>('/v1/audit/findings', { ...query, limit, cursor });
        evaluatedAt ??= page.evaluatedAt;
        items.push(...page.items);
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined && (opts.limit === undefined || items.length < opts.limit));
      if (ctx.json) {
        return printJson({ evaluatedAt, items });
      }
      printLine(`history last evaluated ${evaluatedAt ?? 'never'}`);
      printLine(
        table(items, [
          { header: 'OPENED', value: (f) => f.openedAt },
          { header: 'CLOSED', value: (f) => f.closedAt ?? 'open' },
          { header: 'RECOMMENDATION', value: (f) => f.recommendation },
          { header: 'SEVERITY', value: (f) => f.severity },
          { header: 'SUBJECT', value: (f) => subjectText(f.subject) },
          { header: 'EVIDENCE', value: (f) => f.evidence },
        ]),
      );
    });

  return audit;
}

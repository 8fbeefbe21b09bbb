/**
 * The README's "Caller allowlists" table, generated from the rules files
 * `apps/<service>/src/access-rules.json`, and read back from the README so a test can check
 * that the two agree. Run `node libs/platform/rpc/src/access-rules-table.ts` to print the table.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ACCESS_PROFILES, parseAccessRulesDocument, type AccessProfile } from "./access-rules.ts";

/** The services in the order the README lists them. */
export const RULES_SERVICES = Object.freeze([
  "token",
  "auth-edge",
  "session-identity",
  "iam-policy",
  "mfa",
]);

/** The trust domain the table is written for; names in it are relative to `spiffe://auth.local/ns/auth/sa/`. */
const TABLE_TRUST_DOMAIN = "auth.local";
const WORKLOAD_PREFIX = `spiffe://${TABLE_TRUST_DOMAIN}/ns/auth/sa/`;
const NOBODY = "nobody";

/** One table row's worth of facts: a method and its callers per profile, as shown in the README. */
export interface RuleRow {
  readonly service: string;
  /** Method name without the service, e.g. `IssueTokenPair`. */
  readonly method: string;
  readonly callers: Readonly<Record<AccessProfile, readonly string[]>>;
}

function shown(id: string): string {
  return id.startsWith(WORKLOAD_PREFIX) && !id.slice(WORKLOAD_PREFIX.length).includes("/")
    ? id.slice(WORKLOAD_PREFIX.length)
    : id;
}

/** The rules of every service's file, one row per method, with callers as the README names them. */
export function rulesFromFiles(root: string): RuleRow[] {
  const rows: RuleRow[] = [];
  for (const service of RULES_SERVICES) {
    const file = join(root, "apps", service, "src", "access-rules.json");
    const content: unknown = JSON.parse(readFileSync(file, "utf8"));
    const rules = (content as { rules?: Record<string, unknown> }).rules ?? {};
    // Every key is accepted as known here; the service tests check the methods against the contract.
    const parsed = parseAccessRulesDocument(
      { file, content },
      new Set(Object.keys(rules)),
      TABLE_TRUST_DOMAIN,
    );
    for (const [path, callers] of parsed) {
      rows.push({
        service,
        method: path.slice(path.lastIndexOf("/") + 1),
        callers: {
          production: callers.production.map(shown),
          development: callers.development.map(shown),
        },
      });
    }
  }
  return rows;
}

function callerCell(callers: readonly string[]): string {
  if (callers.length === 0) return NOBODY;
  return callers.map((c) => (c.startsWith("spiffe://") ? `\`${c}\`` : c)).join(", ");
}

/**
 * The Markdown table: one row per service and set of methods with the same callers in both
 * profiles, in file order.
 */
export function accessRulesTable(rows: readonly RuleRow[]): string {
  const groups: { service: string; methods: string[]; production: string; development: string }[] =
    [];
  for (const row of rows) {
    const production = callerCell(row.callers.production);
    const development = callerCell(row.callers.development);
    const group = groups.find(
      (g) =>
        g.service === row.service && g.production === production && g.development === development,
    );
    if (group) group.methods.push(row.method);
    else groups.push({ service: row.service, methods: [row.method], production, development });
  }
  const lines = [
    "| service | RPC | production | development |",
    "| --- | --- | --- | --- |",
    ...groups.map(
      (g) => `| ${g.service} | ${g.methods.join(", ")} | ${g.production} | ${g.development} |`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * Reads the first table after the `### Caller allowlists` heading of `readme` back into rows.
 *
 * @throws {Error} when the section or its table is missing or a row does not have four cells.
 */
export function rulesFromReadme(readme: string): RuleRow[] {
  const start = readme.indexOf("### Caller allowlists");
  if (start === -1) throw new Error('README has no "### Caller allowlists" section');
  const lines = readme.slice(start).split("\n");
  const first = lines.findIndex((line) => line.startsWith("|"));
  if (first === -1) throw new Error("the Caller allowlists section has no table");
  const rows: RuleRow[] = [];
  // Skip the header and the separator line.
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((cell) => cell.trim().replaceAll("`", ""));
    if (cells.length !== 4) throw new Error(`table row without four cells: ${line}`);
    const [service, methods, production, development] = cells as [string, string, string, string];
    const list = (cell: string) =>
      cell === NOBODY ? [] : cell.split(",").map((entry) => entry.trim());
    for (const method of methods.split(",").map((m) => m.trim())) {
      rows.push({
        service,
        method,
        callers: { production: list(production), development: list(development) },
      });
    }
  }
  return rows;
}

/** A comparable form of rows: `service method` → callers per profile, sorted. */
export function normalisedRules(rows: readonly RuleRow[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const row of rows) {
    out[`${row.service} ${row.method}`] = ACCESS_PROFILES.map(
      (profile) => `${profile}: ${[...row.callers[profile]].sort().join(", ")}`,
    ).join("; ");
  }
  return out;
}

if (import.meta.main) {
  process.stdout.write(
    accessRulesTable(rulesFromFiles(resolve(import.meta.dirname, "../../../.."))),
  );
}

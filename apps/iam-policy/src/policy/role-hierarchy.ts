import { z } from "zod";
import { BundleError, type BundleFile, type BundleProblem } from "./policy-engine.ts";
import { lineAt } from "./policy-bundle.ts";

/** A role name: lower case, digits, `_` and `-`, starting with a letter. */
const ROLE_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

const rolesFileSchema = z.strictObject({
  roles: z.record(
    z.string(),
    z.strictObject({
      description: z.string().optional(),
      inherits: z.array(z.string()).default([]),
      grants: z.record(z.string(), z.array(z.string())).default({}),
    }),
  ),
});

/** One role as `roles.json` defines it. */
export interface RoleDefinition {
  readonly name: string;
  readonly description: string;
  /** Roles whose permissions this one inherits (its parents in the hierarchy). */
  readonly inherits: readonly string[];
  /** Resource type (lower snake case) → actions the role permits on it unconditionally. */
  readonly grants: ReadonlyMap<string, readonly string[]>;
  /** Line of the role's definition in `roles.json`. */
  readonly line: number;
}

/**
 * The role hierarchy of a bundle: roles, what each inherits, and what each grants. A role has
 * every permission of the roles it inherits, transitively; the hierarchy has no cycles.
 */
export class RoleHierarchy {
  /** Every role by name. */
  readonly roles: ReadonlyMap<string, RoleDefinition>;
  readonly #closures = new Map<string, readonly string[]>();

  private constructor(roles: ReadonlyMap<string, RoleDefinition>) {
    this.roles = roles;
    for (const name of roles.keys()) this.#closures.set(name, this.#closureOf(name));
  }

  /**
   * Parses and checks `roles.json`: `{"roles": {"<name>": {"description", "inherits": [...],
   * "grants": {"<resource_type>": ["<action>", ...]}}}}`. Refuses unknown parents, bad names
   * and cycles, naming the line of the role.
   */
  static parse(file: BundleFile): RoleHierarchy {
    let raw: unknown;
    try {
      raw = JSON.parse(file.text);
    } catch (error) {
      const position = /position (\d+)/.exec(String((error as Error).message));
      const line = position ? lineAt(file.text, Number(position[1])) : undefined;
      throw new BundleError([
        {
          file: file.name,
          ...(line ? { line } : {}),
          message: `not valid JSON: ${(error as Error).message}`,
        },
      ]);
    }
    const parsed = rolesFileSchema.safeParse(raw);
    if (!parsed.success) {
      throw new BundleError(
        parsed.error.issues.map((issue) => {
          const role = issue.path[0] === "roles" ? issue.path[1] : undefined;
          const line = typeof role === "string" ? roleLine(file.text, role) : undefined;
          return {
            file: file.name,
            ...(line ? { line } : {}),
            message: `${issue.path.map(String).join(".") || "(top level)"}: ${issue.message}`,
          };
        }),
      );
    }
    const problems: BundleProblem[] = [];
    const roles = new Map<string, RoleDefinition>();
    for (const [name, spec] of Object.entries(parsed.data.roles)) {
      const line = roleLine(file.text, name) ?? 1;
      if (!ROLE_NAME.test(name)) {
        problems.push({
          file: file.name,
          line,
          message: `role name "${name}" must match ${ROLE_NAME.source}`,
        });
      }
      roles.set(name, {
        name,
        description: spec.description ?? "",
        inherits: [...new Set(spec.inherits)],
        grants: new Map(
          Object.entries(spec.grants).map(([type, actions]) => [type, [...new Set(actions)]]),
        ),
        line,
      });
    }
    for (const role of roles.values()) {
      for (const parent of role.inherits) {
        if (!roles.has(parent)) {
          problems.push({
            file: file.name,
            line: role.line,
            message: `role "${role.name}" inherits unknown role "${parent}"`,
          });
        }
      }
    }
    if (problems.length === 0) {
      const cycle = findCycle(roles);
      if (cycle) {
        problems.push({
          file: file.name,
          line: roles.get(cycle[0]!)!.line,
          message: `role hierarchy has a cycle: ${cycle.join(" -> ")}`,
        });
      }
    }
    if (problems.length > 0) throw new BundleError(problems);
    return new RoleHierarchy(roles);
  }

  /** Whether `role` is defined. */
  has(role: string): boolean {
    return this.roles.has(role);
  }

  /** `role` and every role it inherits, transitively, sorted; empty for an unknown role. */
  closureOf(role: string): readonly string[] {
    return this.#closures.get(role) ?? [];
  }

  /** The effective roles of a set of assigned roles: known ones and all they inherit, sorted. */
  effectiveRoles(assigned: readonly string[]): readonly string[] {
    const all = new Set<string>();
    for (const role of assigned) for (const r of this.closureOf(role)) all.add(r);
    return [...all].sort();
  }

  #closureOf(role: string): readonly string[] {
    const seen = new Set<string>();
    const stack = [role];
    while (stack.length > 0) {
      const next = stack.pop()!;
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(...(this.roles.get(next)?.inherits ?? []));
    }
    return Object.freeze([...seen].sort());
  }
}

/** The line where `"role":` is first defined as a key, if found. */
function roleLine(text: string, role: string): number | undefined {
  const escaped = JSON.stringify(role).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const match = new RegExp(`${escaped}\\s*:`).exec(text);
  return match ? lineAt(text, match.index) : undefined;
}

/** A cycle as a path that starts and ends at the same role, or undefined. */
function findCycle(roles: ReadonlyMap<string, RoleDefinition>): string[] | undefined {
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === "done") return undefined;
    if (state.get(name) === "visiting") return [...path.slice(path.indexOf(name)), name];
    state.set(name, "visiting");
    path.push(name);
    for (const parent of roles.get(name)?.inherits ?? []) {
      const cycle = visit(parent);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, "done");
    return undefined;
  };
  for (const name of [...roles.keys()].sort()) {
    const cycle = visit(name);
    if (cycle) return cycle;
  }
  return undefined;
}

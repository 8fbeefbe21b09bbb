import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { BundleError, type BundleFile, type PolicyBundleSource } from "./policy-engine.ts";

/** The schema file every bundle must have. */
export const SCHEMA_FILE = "schema.cedarschema";
/** The role hierarchy file every bundle must have. */
export const ROLES_FILE = "roles.json";
/** Policy files: every `*.cedar` file at the top of the directory. */
export const POLICY_FILE_SUFFIX = ".cedar";

/** Whether a directory entry belongs to the bundle (dotfiles and other files are ignored). */
export function isBundleFileName(name: string): boolean {
  if (name.startsWith(".")) return false;
  return name === SCHEMA_FILE || name === ROLES_FILE || name.endsWith(POLICY_FILE_SUFFIX);
}

/**
 * Reads a bundle from `dir`: `schema.cedarschema`, `roles.json` and every `*.cedar` file at the
 * top level (symlinks followed, so Kubernetes ConfigMap mounts work). Throws {@link BundleError}
 * when the directory or a required file cannot be read.
 */
export async function readPolicyBundle(dir: string): Promise<PolicyBundleSource> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter(isBundleFileName).sort();
  } catch (error) {
    throw new BundleError([
      { file: dir, message: `cannot read the policy directory (${code(error)})` },
    ]);
  }
  const files: BundleFile[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      if (!(await stat(path)).isFile()) continue;
      files.push({ name, text: await readFile(path, "utf8") });
    } catch (error) {
      throw new BundleError([{ file: name, message: `cannot be read (${code(error)})` }]);
    }
  }
  return { files };
}

function code(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? "unknown error";
}

/** The version of a bundle: a hash of its file names and contents, 16 hex digits. */
export function bundleVersion(bundle: PolicyBundleSource): string {
  const hash = createHash("sha256");
  for (const file of bundle.files) {
    hash.update(file.name).update("\0").update(file.text).update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

/** The 1-based line of a character offset in `text`. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

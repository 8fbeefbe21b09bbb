// The part of node-oidc-provider's API that bench/token-oidc-provider-server.ts uses; the package
// ships no types, and this keeps the bench from depending on @types for one file.
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http";

  interface Model {
    save(): Promise<string>;
  }

  interface GrantModel extends Model {
    addResourceScope(resource: string, scope: string): void;
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    readonly Client: { find(id: string): Promise<unknown> };
    readonly Grant: new (properties: { accountId: string; clientId: string }) => GrantModel;
    readonly RefreshToken: new (properties: Record<string, unknown>) => Model;
  }
}

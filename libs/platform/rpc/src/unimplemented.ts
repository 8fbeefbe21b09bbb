import type { DescService } from "@bufbuild/protobuf";
import { unimplemented } from "@authplat/errors";
import type { ServiceHandlers } from "./handlers.ts";

/**
 * Handlers that answer every method of `service` with UNIMPLEMENTED through the shared error
 * model, for RPCs a later release serves. Spread real handlers over it:
 * `{ ...unimplementedHandlers(TokenService), issueTokenPair }`.
 */
export function unimplementedHandlers<S extends DescService>(service: S): ServiceHandlers<S> {
  const handlers: Record<string, () => Promise<never>> = {};
  for (const method of service.methods) {
    handlers[method.localName] = () => Promise.reject(unimplemented(method.name));
  }
  return handlers as unknown as ServiceHandlers<S>;
}

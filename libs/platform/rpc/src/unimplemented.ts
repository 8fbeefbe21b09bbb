import type { DescService } from "@bufbuild/protobuf";
import { unimplemented } from "@authplat/errors";
import type { ServiceHandlers } from "./handlers.ts";

/**
 * Handlers that answer every method of `service` with UNIMPLEMENTED through the shared error
 * model, for RPCs a later release serves (a streaming method fails before its first message).
 * Spread real handlers over it: `{ ...unimplementedHandlers(TokenService), issueTokenPair }`.
 */
export function unimplementedHandlers<S extends DescService>(service: S): ServiceHandlers<S> {
  const handlers: Record<string, () => unknown> = {};
  for (const method of service.methods) {
    handlers[method.localName] =
      method.methodKind === "server_streaming"
        ? // A stream that fails before its first message.
          async function* () {
            throw unimplemented(method.name);
          }
        : () => Promise.reject(unimplemented(method.name));
  }
  return handlers as unknown as ServiceHandlers<S>;
}

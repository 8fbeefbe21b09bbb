import { MemoryRefreshTokenStore } from "./memory-refresh-token-store.ts";
import { describeRefreshTokenStoreContract } from "./refresh-token-store.contract.ts";

describeRefreshTokenStoreContract("memory", async () => {
  let now = 0;
  return { store: new MemoryRefreshTokenStore(() => now), setNow: (ms) => (now = ms) };
});

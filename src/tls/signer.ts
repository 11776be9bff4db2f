/**
 * The signer (./sign) is loaded on demand: @peculiar/x509 takes ~0.3 s to load, which
 * only tlsCertProvider=self needs to pay (a plaintext `serve` or `log` never does).
 */
export function loadSigner(): Promise<typeof import('./sign')> {
  return import('./sign');
}

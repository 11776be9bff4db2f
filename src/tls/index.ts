/**
 * TLS on the feeder port (tlsEnabled, tlsCertPath, tlsCertProvider as upstream): the
 * server's reloading mTLS credentials, `armorfeed log --secure`'s client material, and
 * the signing of self-provided leaves from ca.crt + ca.key.
 */
export { certProviders, DEFAULT_TLS_CERT_PATH, tlsFileNames, serverFiles, clientFiles, type CertProvider, type TlsFile } from './files';
export { ServerTls, TLS_POLL_MS, type ServerMaterial, type ServerTlsOptions, type TlsLog, type TlsStats } from './serverTls';
export { loadClientTls, type ClientTlsMaterial } from './client';
export { loadSigner } from './signer';
export type { Authority, LeafRequest, SignedLeaf } from './sign';

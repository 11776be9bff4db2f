/**
 * `armorfeed log --secure`: the client's side of mTLS as karmor does it. With
 * tlsCertProvider=self the client signs its own certificate from ca.crt + ca.key
 * (karmor's default, `cert.DefaultKubeArmorClientConfig`: CN and O kubearmor, client
 * auth, one year); with external it presents client.crt + client.key. Either way the
 * server is verified against ca.crt.
 */
import * as tls from 'node:tls';
import { clientFiles, materialError, parseCertificates, parsePrivateKey, readTlsFiles, type CertProvider, type TlsSource } from './files';
import { loadSigner } from './signer';

export interface ClientTlsMaterial {
  rootCerts: Buffer;
  privateKey: Buffer;
  certChain: Buffer;
}

/** Reads (and with self, signs) the client's material; throws TlsMaterialError naming `key` and the file. */
export async function loadClientTls(dir: string, provider: CertProvider, key = '--tlsCertPath'): Promise<ClientTlsMaterial> {
  const source: TlsSource = { key, dir };
  const files = readTlsFiles(source, clientFiles(provider));
  const rootCerts = files.caCert ?? Buffer.alloc(0);
  parseCertificates(source, 'caCert', rootCerts);
  let certChain: Buffer;
  let privateKey: Buffer;
  if (provider === 'self') {
    const { loadAuthority, signLeaf } = await loadSigner();
    const leaf = await signLeaf(await loadAuthority(source, files), { role: 'client' });
    certChain = Buffer.from(leaf.certPem);
    privateKey = Buffer.from(leaf.keyPem);
  } else {
    certChain = files.clientCert ?? Buffer.alloc(0);
    privateKey = files.clientKey ?? Buffer.alloc(0);
    const leaf = parseCertificates(source, 'clientCert', certChain)[0];
    if (!leaf.checkPrivateKey(parsePrivateKey(source, 'clientKey', privateKey))) throw materialError(source, 'clientKey', 'does not belong to the first certificate in client.crt');
  }
  try {
    tls.createSecureContext({ ca: rootCerts, cert: certChain, key: privateKey });
  } catch (err) {
    throw materialError(source, provider === 'self' ? 'caCert' : 'clientCert', `cannot be used for TLS: ${(err as Error).message}`);
  }
  return { rootCerts, privateKey, certChain };
}

/**
 * tlsCertProvider=self: sign a fresh leaf from ca.crt + ca.key, as KubeArmor does for its
 * server (cert/certloader.go) and karmor for its client: CN and O `kubearmor`, valid 365
 * days, server leaves with the node's addresses as IP SANs. The leaf key is a new
 * ECDSA P-256 key that stays in memory; the CA key may be RSA (upstream writes PKCS#1),
 * ECDSA or Ed25519, in any PEM encoding Node reads.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, webcrypto, type KeyObject, type X509Certificate as NodeX509 } from 'node:crypto';
import * as os from 'node:os';
import { materialError, parseCertificates, parsePrivateKey, type TlsFiles, type TlsSource } from './files';

x509.cryptoProvider.set(webcrypto);

export const LEAF_VALID_DAYS = 365;
/** Leaves start a little in the past so a peer whose clock is behind accepts them at once. */
const BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
const KUBEARMOR = 'kubearmor';

export interface Authority {
  /** The CA certificate ca.key belongs to. */
  cert: NodeX509;
  signingKey: webcrypto.CryptoKey;
  signingAlgorithm: { name: string; hash?: string };
}

export interface SignedLeaf {
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

/** How to import a CA key into WebCrypto and sign with it. */
function algorithmOf(key: KeyObject): { importAs: webcrypto.AlgorithmIdentifier | webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams; sign: { name: string; hash?: string } } | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { importAs: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5' } };
    case 'ec': {
      const curve = { prime256v1: ['P-256', 'SHA-256'], secp384r1: ['P-384', 'SHA-384'], secp521r1: ['P-521', 'SHA-512'] }[key.asymmetricKeyDetails?.namedCurve ?? ''];
      return curve === undefined ? undefined : { importAs: { name: 'ECDSA', namedCurve: curve[0] }, sign: { name: 'ECDSA', hash: curve[1] } };
    }
    case 'ed25519':
      return { importAs: { name: 'Ed25519' }, sign: { name: 'Ed25519' } };
    default:
      return undefined;
  }
}

/**
 * The CA that signs: the certificate in ca.crt that ca.key belongs to (ca.crt may also
 * hold others, e.g. the previous CA during a rotation), which must be a CA.
 */
export async function loadAuthority(source: TlsSource, files: TlsFiles): Promise<Authority> {
  const certs = parseCertificates(source, 'caCert', files.caCert ?? Buffer.alloc(0));
  const key = parsePrivateKey(source, 'caKey', files.caKey ?? Buffer.alloc(0));
  const cert = certs.find((c) => c.checkPrivateKey(key));
  if (cert === undefined) throw materialError(source, 'caKey', 'does not belong to any certificate in ca.crt');
  if (!cert.ca) throw materialError(source, 'caCert', `${cert.subject.replace(/\n/g, ', ')} is not a CA certificate (basicConstraints CA:TRUE is missing), so it cannot sign`);
  const alg = algorithmOf(key);
  if (alg === undefined) {
    throw materialError(source, 'caKey', `is a ${key.asymmetricKeyType} key${key.asymmetricKeyDetails?.namedCurve !== undefined ? ` on ${key.asymmetricKeyDetails.namedCurve}` : ''}; tlsCertProvider=self signs with RSA, ECDSA (P-256, P-384, P-521) or Ed25519 keys`);
  }
  const der = key.export({ format: 'der', type: 'pkcs8' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, alg.importAs, false, ['sign']);
  return { cert, signingKey, signingAlgorithm: alg.sign };
}

/**
 * The node's addresses, loopback always included so local clients verify the server.
 * IPv6 link-local ones are left out: nobody dials them without a zone, and a node with
 * a veth per pod has one per pod.
 */
export function nodeAddresses(): string[] {
  const ips = new Set<string>(['127.0.0.1', '::1']);
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (!(a.family === 'IPv6' && a.scopeid !== undefined && a.scopeid !== 0)) ips.add(a.address);
  }
  return [...ips];
}

/** DNS SANs of a server leaf: localhost, upstream's service name and this host's name. */
export function nodeDnsNames(): string[] {
  const names = new Set<string>(['localhost', KUBEARMOR]);
  const host = os.hostname();
  if (/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$/.test(host)) names.add(host);
  return [...names];
}

export interface LeafRequest {
  role: 'server' | 'client';
  /** IP SANs (server leaves). */
  ips?: readonly string[];
  /** DNS SANs (server leaves). */
  dnsNames?: readonly string[];
  now?: Date;
}

export async function signLeaf(ca: Authority, req: LeafRequest): Promise<SignedLeaf> {
  const now = req.now ?? new Date();
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const notAfter = new Date(now.getTime() + LEAF_VALID_DAYS * DAY_MS);
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const issuer = new x509.X509Certificate(ca.cert.raw);
  // The issuer name is copied as encoded: Go matches a leaf to its CA on the raw bytes.
  const issuerName = new x509.Name(issuer.subjectName.toArrayBuffer());
  const caKeyId = issuer.getExtension(x509.SubjectKeyIdentifierExtension);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([req.role === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    caKeyId !== null ? new x509.AuthorityKeyIdentifierExtension(caKeyId.keyId) : await x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey),
  ];
  const sans = [...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })), ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value }))];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  const cert = await x509.X509CertificateGenerator.create({
    subject: [{ O: [KUBEARMOR] }, { CN: [KUBEARMOR] }],
    issuer: issuerName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: ca.signingAlgorithm,
    extensions,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
  return { certPem: cert.toString('pem'), keyPem, notAfter };
}

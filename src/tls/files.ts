/**
 * The files under tlsCertPath, by upstream's names (KubeArmor `cert/cert.go`), which of
 * them each side reads for each provider, and reading and checking them with errors
 * that name the option and the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { TlsMaterialError } from '../errors';

/** `self`: certificates are signed at start from ca.crt + ca.key; `external`: used as they are. */
export type CertProvider = 'self' | 'external';
export const certProviders: readonly CertProvider[] = ['self', 'external'];
/** Upstream's default tlsCertPath, for the daemon and for karmor. */
export const DEFAULT_TLS_CERT_PATH = '/var/lib/kubearmor/tls';

export const tlsFileNames = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  serverCert: 'server.crt',
  serverKey: 'server.key',
  clientCert: 'client.crt',
  clientKey: 'client.key',
} as const;
export type TlsFile = keyof typeof tlsFileNames;

/** What each file is for, in error messages. */
const purpose: Record<TlsFile, string> = {
  caCert: 'the CA certificate',
  caKey: 'the CA key, which tlsCertProvider=self signs certificates with',
  serverCert: 'the server certificate (tlsCertProvider=external)',
  serverKey: 'the server key (tlsCertProvider=external)',
  clientCert: 'the client certificate (tlsCertProvider=external)',
  clientKey: 'the client key (tlsCertProvider=external)',
};

/** The files the server reads: it verifies clients against ca.crt either way. */
export function serverFiles(provider: CertProvider): TlsFile[] {
  return provider === 'self' ? ['caCert', 'caKey'] : ['caCert', 'serverCert', 'serverKey'];
}

/** The files `armorfeed log --secure` reads (karmor's: self signs its own client certificate). */
export function clientFiles(provider: CertProvider): TlsFile[] {
  return provider === 'self' ? ['caCert', 'caKey'] : ['caCert', 'clientCert', 'clientKey'];
}

export type TlsFiles = Partial<Record<TlsFile, Buffer>>;

/** Where a problem is reported: the option (`tlsCertPath`, `--tlsCertPath`) and the directory. */
export interface TlsSource {
  key: string;
  dir: string;
}

export function filePath(source: TlsSource, file: TlsFile): string {
  return path.join(source.dir, tlsFileNames[file]);
}

export function materialError(source: TlsSource, file: TlsFile, message: string): TlsMaterialError {
  return new TlsMaterialError(source.key, filePath(source, file), message);
}

function readProblem(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return err.message;
  }
}

/** Reads `files` from the directory; throws TlsMaterialError naming the first one that cannot be read. */
export function readTlsFiles(source: TlsSource, files: readonly TlsFile[]): TlsFiles {
  const out: TlsFiles = {};
  for (const file of files) {
    try {
      out[file] = fs.readFileSync(filePath(source, file));
    } catch (err) {
      throw materialError(source, file, `cannot read ${purpose[file]}: ${readProblem(err as NodeJS.ErrnoException)}`);
    }
  }
  return out;
}

/**
 * What identifies a file's current content without reading it: device, inode (a
 * rename-replace, as Kubernetes secret mounts do through their `..data` symlink, gives
 * a new one), size and change times. stat follows symlinks, so a swapped link shows.
 */
export function fileStamps(source: TlsSource, files: readonly TlsFile[]): string {
  return files
    .map((file) => {
      try {
        const s = fs.statSync(filePath(source, file));
        return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
      } catch (err) {
        return `missing:${(err as NodeJS.ErrnoException).code ?? '?'}`;
      }
    })
    .join('|');
}

const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM file (ca.crt may hold more than one CA during a rotation). */
export function parseCertificates(source: TlsSource, file: TlsFile, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(pemCertificate) ?? [];
  if (blocks.length === 0) throw materialError(source, file, `has no PEM certificate (no "-----BEGIN CERTIFICATE-----" block); it should hold ${purpose[file]}`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw materialError(source, file, `certificate ${i + 1} does not parse: ${(err as Error).message}`);
    }
  });
}

export function parsePrivateKey(source: TlsSource, file: TlsFile, pem: Buffer): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw materialError(source, file, `is not a PEM private key (${purpose[file]}): ${(err as Error).message}`);
  }
}

/**
 * The feeder port's TLS (tlsEnabled): mutual TLS as upstream (client certificates
 * required and verified against ca.crt), with certificates that reload when their files
 * change, without a restart (Tetragon does this; upstream KubeArmor builds its
 * credentials once).
 *
 * Reloading uses grpc-js's own mechanism: `ServerTls` is a CertificateProvider behind
 * `experimental.createCertificateProviderServerCredentials`, and grpc-js hands each
 * update to its TLS server's setSecureContext, which new handshakes use; connections
 * already up keep theirs. Each update gets a new OpenSSL context, so new ticket keys,
 * so no session from before a reload can be resumed past it.
 * grpc-js's FileWatcherCertificateProvider is not used: a failed read makes it publish
 * "no certificates", after which grpc-js drops every new connection; it re-reads on a
 * timer whatever changed; and it cannot sign (tlsCertProvider=self).
 *
 * What triggers a reload: fs.watch on tlsCertPath (fast, debounced) and a poll of the
 * files' stamps every few seconds (fs.watch misses events on some file systems, and a
 * watched directory can be replaced). A stamp is dev/inode/size/times, with symlinks
 * followed, so Kubernetes' atomic `..data` symlink swap shows. A change whose content is
 * the same is no reload. A reload that fails keeps the material in use and logs an
 * ERROR (rate-limited); the next change of the files is tried again.
 */
import { createHash, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { RateLimitedNotice } from '../messages';
import {
  fileStamps,
  materialError,
  parseCertificates,
  parsePrivateKey,
  readTlsFiles,
  serverFiles,
  type CertProvider,
  type TlsFile,
  type TlsFiles,
  type TlsSource,
} from './files';
import { loadSigner } from './signer';

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/** Between two looks at the files' stamps when fs.watch says nothing. */
export const TLS_POLL_MS = 5000;
/** fs.watch fires once per file operation; a rename-replace of three files is one reload. */
const DEBOUNCE_MS = 150;
/** A self-signed leaf is signed again this long before it expires (it is valid 365 days). */
const RENEW_BEFORE_MS = 30 * 86_400_000;
/** At most one reload ERROR per this period; the ones in between are counted in the next. */
const ERROR_EVERY_MS = 10_000;

export interface TlsLog {
  info(text: string): void;
  warn(text: string): void;
  error(text: string): void;
}

export interface ServerMaterial {
  /** ca.crt as read: clients are verified against every CA in it. */
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  subject: string;
  issuer: string;
  notAfter: Date;
  /** Of the files it was built from: the same content again is no reload. */
  digest: string;
}

export interface ServerTlsOptions {
  certPath: string;
  provider: CertProvider;
  log: TlsLog;
  /** The option errors name; default tlsCertPath. */
  key?: string;
  pollMs?: number;
}

export interface TlsStats {
  provider: CertProvider;
  certPath: string;
  serverCertSubject: string;
  serverCertNotAfter: string;
  loadedAt: string;
  /** Reloads that replaced the material. */
  reloads: number;
  /** Reloads that failed and kept the material in use. */
  reloadFailures: number;
}

function digestOf(files: TlsFiles): string {
  const h = createHash('sha256');
  for (const [name, content] of Object.entries(files)) h.update(name).update(content);
  return h.digest('hex');
}

function oneLine(name: string): string {
  return name.split('\n').filter((s) => s !== '').join(', ');
}

/** Builds the server's material from files already read; throws TlsMaterialError. */
async function materialFrom(source: TlsSource, provider: CertProvider, files: TlsFiles, digest: string): Promise<ServerMaterial> {
  const ca = files.caCert ?? Buffer.alloc(0);
  parseCertificates(source, 'caCert', ca);
  let cert: Buffer;
  let key: Buffer;
  let blame: TlsFile;
  if (provider === 'self') {
    const { loadAuthority, nodeAddresses, nodeDnsNames, signLeaf } = await loadSigner();
    const leaf = await signLeaf(await loadAuthority(source, files), { role: 'server', ips: nodeAddresses(), dnsNames: nodeDnsNames() });
    cert = Buffer.from(leaf.certPem);
    key = Buffer.from(leaf.keyPem);
    blame = 'caCert';
  } else {
    cert = files.serverCert ?? Buffer.alloc(0);
    key = files.serverKey ?? Buffer.alloc(0);
    const leaf = parseCertificates(source, 'serverCert', cert)[0];
    if (!leaf.checkPrivateKey(parsePrivateKey(source, 'serverKey', key))) throw materialError(source, 'serverKey', 'does not belong to the first certificate in server.crt');
    blame = 'serverCert';
  }
  // grpc-js passes this to setSecureContext; what it cannot load would leave the port
  // refusing every new connection, so it is tried here first.
  try {
    tls.createSecureContext({ ca, cert, key });
  } catch (err) {
    throw materialError(source, blame, `cannot be used for TLS: ${(err as Error).message}`);
  }
  const leaf = new X509Certificate(cert);
  return { ca, cert, key, subject: oneLine(leaf.subject), issuer: oneLine(leaf.issuer), notAfter: new Date(leaf.validTo), digest };
}

export class ServerTls implements CertificateProvider {
  /** Reads (and with self, signs) the material; throws TlsMaterialError, which `serve` turns into exit 2. */
  static async start(opts: ServerTlsOptions): Promise<ServerTls> {
    const source: TlsSource = { key: opts.key ?? 'tlsCertPath', dir: opts.certPath };
    const names = serverFiles(opts.provider);
    const stamps = fileStamps(source, names);
    const files = readTlsFiles(source, names);
    const material = await materialFrom(source, opts.provider, files, digestOf(files));
    return new ServerTls(opts, source, material, stamps);
  }

  /** For grpc.Server.bindAsync: mTLS, client certificates required and verified. */
  readonly credentials: grpc.ServerCredentials;
  private readonly files: TlsFile[];
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly updateListeners = new Set<(m: ServerMaterial) => void>();
  private readonly errorNotice = new RateLimitedNotice(ERROR_EVERY_MS);
  private readonly poll: NodeJS.Timeout;
  private watcher: fs.FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private loadedAt = new Date();
  /** Stamps of the files at the last attempt, good or not. */
  private attempted: string;
  private reloading = false;
  private recheck = false;
  private closed = false;
  private reloads = 0;
  private reloadFailures = 0;

  private constructor(
    private readonly opts: ServerTlsOptions,
    private readonly source: TlsSource,
    private material: ServerMaterial,
    stamps: string,
  ) {
    this.files = serverFiles(opts.provider);
    this.attempted = stamps;
    // grpc-js names this function's parameters (ca, identity) but uses them as (identity,
    // ca); one provider serves both, so the order cannot go wrong here.
    this.credentials = grpc.experimental.createCertificateProviderServerCredentials(this, this, true);
    this.poll = setInterval(() => this.check(), opts.pollMs ?? TLS_POLL_MS);
    this.poll.unref();
    this.watchDirectory();
    this.describe('loaded');
  }

  get current(): ServerMaterial {
    return this.material;
  }

  /** Called with the new material after each reload (the HTTPS metrics server follows it). */
  onUpdate(listener: (m: ServerMaterial) => void): void {
    this.updateListeners.add(listener);
  }

  stats(): TlsStats {
    return {
      provider: this.opts.provider,
      certPath: this.opts.certPath,
      serverCertSubject: this.material.subject,
      serverCertNotAfter: this.material.notAfter.toISOString(),
      loadedAt: this.loadedAt.toISOString(),
      reloads: this.reloads,
      reloadFailures: this.reloadFailures,
    };
  }

  close(): void {
    this.closed = true;
    clearInterval(this.poll);
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = undefined;
  }

  // CertificateProvider (grpc-js): the latest material now, every reload later.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(listener, { caCertificate: this.material.ca });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(listener, { certificate: this.material.cert, privateKey: this.material.key });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private describe(what: string): void {
    const m = this.material;
    const self = this.opts.provider === 'self' ? ` (signed here by ${m.issuer})` : '';
    this.opts.log.info(`TLS: ${what} the certificates in ${this.opts.certPath} (tlsCertProvider=${this.opts.provider}): server certificate ${m.subject}${self}, valid until ${m.notAfter.toISOString()}; clients must present a certificate from ca.crt`);
    if (m.notAfter.getTime() < Date.now()) this.opts.log.warn(`TLS: the server certificate in ${this.opts.certPath} expired at ${m.notAfter.toISOString()}; clients will refuse it`);
  }

  private watchDirectory(): void {
    try {
      const watcher = fs.watch(this.opts.certPath, { persistent: false }, () => this.soon());
      watcher.on('error', () => {
        // The directory went away or was replaced: the poll takes over and watches again.
        watcher.close();
        if (this.watcher === watcher) this.watcher = undefined;
      });
      this.watcher = watcher;
    } catch {
      this.watcher = undefined;
    }
  }

  private soon(): void {
    if (this.closed || this.debounce !== undefined) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.check();
    }, DEBOUNCE_MS);
    this.debounce.unref();
  }

  private check(): void {
    if (this.closed) return;
    if (this.watcher === undefined) this.watchDirectory();
    const stamps = fileStamps(this.source, this.files);
    const renew = this.opts.provider === 'self' && Date.now() > this.material.notAfter.getTime() - RENEW_BEFORE_MS;
    if (stamps === this.attempted && !renew) return;
    if (this.reloading) {
      this.recheck = true;
      return;
    }
    this.attempted = stamps;
    this.reloading = true;
    this.reload(renew)
      .catch((err: unknown) => this.failed(err as Error))
      .finally(() => {
        this.reloading = false;
        if (this.recheck) {
          this.recheck = false;
          this.check();
        }
      });
  }

  private async reload(renew: boolean): Promise<void> {
    const files = readTlsFiles(this.source, this.files);
    const digest = digestOf(files);
    const sameFiles = digest === this.material.digest;
    if (sameFiles && !renew) return;
    const material = await materialFrom(this.source, this.opts.provider, files, digest);
    if (this.closed) return;
    this.material = material;
    this.loadedAt = new Date();
    this.reloads++;
    // Both in one turn of the event loop, so no handshake sees a new CA with the old leaf.
    for (const listener of this.caListeners) listener({ caCertificate: material.ca });
    for (const listener of this.identityListeners) listener({ certificate: material.cert, privateKey: material.key });
    for (const listener of this.updateListeners) listener(material);
    this.describe(sameFiles ? 'signed again from' : 'reloaded');
  }

  private failed(err: Error): void {
    if (this.closed) return;
    this.reloadFailures++;
    const suppressed = this.errorNotice.take();
    if (suppressed < 0) return;
    this.opts.log.error(
      `TLS: cannot reload the certificates in ${this.opts.certPath}: ${err.message}; new connections keep using the ones loaded at ${this.loadedAt.toISOString()}` +
        (suppressed > 0 ? ` (${suppressed} more failures not shown)` : ''),
    );
  }
}

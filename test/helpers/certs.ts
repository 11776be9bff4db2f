/**
 * Certificates for the TLS tests, made with the openssl CLI (an implementation other
 * than the one armorfeed signs with), in upstream's file names under a temp directory,
 * and the two ways files get replaced under a running server: rename over the old
 * file, and Kubernetes' secret volume (`..data` symlink swapped atomically).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const TLS_FILES = ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'client.crt', 'client.key'] as const;
export type TlsFileName = (typeof TLS_FILES)[number];

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 30_000 });
}

function leaf(dir: string, role: 'server' | 'client'): void {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${role}.key`]);
  openssl(dir, ['req', '-new', '-key', `${role}.key`, '-subj', '/O=kubearmor/CN=kubearmor', '-out', `${role}.csr`]);
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${role === 'server' ? 'serverAuth' : 'clientAuth'}`,
    ...(role === 'server' ? ['subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost'] : []),
  ];
  fs.writeFileSync(path.join(dir, `${role}.ext`), `${ext.join('\n')}\n`);
  openssl(dir, ['x509', '-req', '-in', `${role}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-extfile', `${role}.ext`, '-out', `${role}.crt`]);
  fs.rmSync(path.join(dir, `${role}.csr`));
  fs.rmSync(path.join(dir, `${role}.ext`));
}

/**
 * Writes a CA and a server and a client certificate it signed into `dir` (created).
 * `rsa`: an RSA CA key in PKCS#1 ("RSA PRIVATE KEY"), as upstream writes it; `ec`: a
 * P-384 CA key in SEC1. Leaves are P-256; the server's SANs are 127.0.0.1, ::1, localhost.
 */
export function makeCertSet(dir: string, name: string, caKey: 'rsa' | 'ec'): string {
  fs.mkdirSync(dir, { recursive: true });
  if (caKey === 'rsa') openssl(dir, ['genrsa', '-traditional', '-out', 'ca.key', '2048']);
  else openssl(dir, ['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', 'ca.key']);
  openssl(dir, ['req', '-x509', '-new', '-key', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/O=armorfeed-test/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  leaf(dir, 'server');
  leaf(dir, 'client');
  return dir;
}

/** Copies `files` of a set into `dir` (created), e.g. only ca.crt and ca.key for tlsCertProvider=self. */
export function copyFiles(from: string, dir: string, files: readonly TlsFileName[]): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  return dir;
}

/** Replaces each file by writing a temporary beside it and renaming it over the old one. */
export function renameOver(from: string, dir: string, files: readonly TlsFileName[]): void {
  for (const f of files) {
    const tmp = path.join(dir, `.${f}.tmp`);
    fs.copyFileSync(path.join(from, f), tmp);
    fs.renameSync(tmp, path.join(dir, f));
  }
}

let generation = 0;

/**
 * Lays `dir` out as the kubelet does a secret volume, or updates it the same way: the
 * files go into a new `..<timestamp>` directory, a `..data_tmp` symlink to it is renamed
 * over `..data`, and each name in `dir` is a symlink through `..data`. Every file changes
 * at once; none is ever half written.
 */
export function projectSecret(from: string, dir: string, files: readonly TlsFileName[], contents: Partial<Record<TlsFileName, string>> = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = `..${Date.now()}_${generation++}`;
  fs.mkdirSync(path.join(dir, stamp));
  for (const f of files) {
    const target = path.join(dir, stamp, f);
    if (contents[f] !== undefined) fs.writeFileSync(target, contents[f] ?? '');
    else fs.copyFileSync(path.join(from, f), target);
  }
  const previous = fs.existsSync(path.join(dir, '..data')) ? fs.readlinkSync(path.join(dir, '..data')) : undefined;
  fs.symlinkSync(stamp, path.join(dir, '..data_tmp'));
  fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  for (const f of files) {
    if (!fs.existsSync(path.join(dir, f))) fs.symlinkSync(path.join('..data', f), path.join(dir, f));
  }
  if (previous !== undefined) fs.rmSync(path.join(dir, previous), { recursive: true, force: true });
}

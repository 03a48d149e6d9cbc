/**
 * The tracker's TLS identity: either its own key and self-signed certificate, made on first
 * start and kept in the settings table beside the ticket key, or an operator's certificate
 * and key read from PEM files (`--tls-cert FILE --tls-key FILE`).
 *
 * @module
 */

import { UserError } from "../lib/errors.ts";
import {
  type Fingerprint,
  fingerprintOf,
  generateIdentity,
  type Identity,
  loadIdentity,
  pemToDer,
} from "../lib/identity.ts";
import { FileTooLargeError, readFileBounded } from "../lib/io.ts";
import type { KeyStorage } from "./auth.ts";

/** Key PEM then certificate PEM in one value, so the two are written together or not at all. */
const TLS_IDENTITY_SETTING = "tls_identity_pem";
const TRACKER_COMMON_NAME = "swarmshare tracker";
/** Operator PEM files: a long chain is a few tens of KiB. */
const OPERATOR_FILE_LIMIT_BYTES = 1024 * 1024;

/**
 * The tracker's TLS identity: made on first start and kept in the settings table, commonName
 * "swarmshare tracker", SAN the given hosts. Later starts load the stored one whatever `hosts`
 * says: its fingerprint is what clients pinned. Instances sharing a database share it, the
 * first one written when they start together.
 */
export async function loadTrackerIdentity(
  storage: KeyStorage,
  hosts: string[],
): Promise<Identity> {
  let stored = await storage.setting(TLS_IDENTITY_SETTING);
  if (!stored) {
    // instances starting together on one empty database each offer an identity: the first
    // written is the one every instance presents (and clients pin)
    const made = await generateIdentity(TRACKER_COMMON_NAME, hosts);
    stored = await storage.claimSetting(
      TLS_IDENTITY_SETTING,
      new TextEncoder().encode(made.keyPem + made.certPem),
    );
  }
  const pem = new TextDecoder().decode(stored);
  try {
    return await loadIdentity(pemToDer(pem, "PRIVATE KEY"), pemToDer(pem, "CERTIFICATE"));
  } catch (error) {
    throw new UserError(
      `the TLS identity in the database is damaged: ${(error as Error).message}`,
    );
  }
}

/**
 * An operator's own certificate (--tls-cert FILE --tls-key FILE): reads both PEM files
 * (bounded: 1 MiB each), returns the whole certificate chain as given, the key, and the
 * fingerprint of the FIRST certificate. The key may be any PEM private key (RSA, EC, PKCS#8);
 * it is not parsed, so a key that does not fit the certificate shows up when TLS starts.
 */
export async function loadOperatorCertificate(
  certPath: string,
  keyPath: string,
): Promise<{ certPem: string; keyPem: string; fingerprint: Fingerprint }> {
  const certPem = await readPemFile("--tls-cert", certPath, "certificate");
  let firstCertificate: Uint8Array;
  try {
    firstCertificate = pemToDer(certPem, "CERTIFICATE");
  } catch (error) {
    throw new UserError(`--tls-cert ${certPath}: ${(error as Error).message}`);
  }
  const keyPem = await readPemFile("--tls-key", keyPath, "private key");
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(keyPem)) {
    throw new UserError(`--tls-key ${keyPath}: the private key is encrypted; give it unencrypted`);
  }
  const block = /-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/.exec(keyPem);
  if (!block) throw new UserError(`--tls-key ${keyPath}: no PRIVATE KEY block in the file`);
  return { certPem, keyPem, fingerprint: await fingerprintOf(firstCertificate) };
}

async function readPemFile(option: string, path: string, what: string): Promise<string> {
  try {
    return new TextDecoder().decode(await readFileBounded(path, OPERATOR_FILE_LIMIT_BYTES));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new UserError(`${option} ${path}: no such file`);
    }
    if (error instanceof FileTooLargeError) {
      throw new UserError(`${option} ${path}: larger than 1 MiB, not a PEM ${what}`);
    }
    throw new UserError(`${option} ${path}: cannot read the ${what}: ${(error as Error).message}`);
  }
}

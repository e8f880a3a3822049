/**
 * Secrets the local stack makes for itself, once per data folder and idempotently: the passwords of the job's
 * users (random, in files of mode 600 that the job's config names by `*.passwordFile`) and Kafka's TLS
 * material (a self-signed CA, whose certificate clients trust, and the broker's keystore). They live in
 * `<dataDir>/<component>/secrets/` (mode 700) and are never logged nor put on a command line, where `ps`
 * would show them to every user.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { componentError, run } from './install.ts';

/** The user the local stack makes for the job, in Kafka (SCRAM) and in ClickHouse. */
export const JOB_USER = 'encore';

/** Where the Kafka component keeps its secrets; `dataDir` is the stack's (absolute) data folder. */
export function kafkaSecrets(dataDir: string) {
  const dir = path.join(dataDir, 'kafka', 'secrets');
  return {
    dir,
    /** The CA certificate (PEM) clients trust: `kafka.security.caFile`. */
    caFile: path.join(dir, 'ca.pem'),
    /** The job user's SCRAM password: `kafka.security.passwordFile`. */
    jobPasswordFile: path.join(dir, `${JOB_USER}.password`),
    keystore: path.join(dir, 'broker.p12'),
    keystorePasswordFile: path.join(dir, 'broker-keystore.password'),
  };
}

export type KafkaSecrets = ReturnType<typeof kafkaSecrets>;

/** Where the ClickHouse component keeps its secrets. */
export function clickhouseSecrets(dataDir: string) {
  const dir = path.join(dataDir, 'clickhouse', 'secrets');
  /** The job user's password: `clickhouse.passwordFile`. */
  return { dir, jobPasswordFile: path.join(dir, `${JOB_USER}.password`) };
}

function secretsFolder(dir: string) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

function readSecret(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

/** The password kept in `file`, made (random, hex: safe in XML, properties files and JAAS) the first time. */
export function ensurePassword(file: string): string {
  secretsFolder(path.dirname(file));
  if (!existsSync(file)) {
    const partial = `${file}.partial`;
    writeFileSync(partial, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
    renameSync(partial, file);
  }
  return readSecret(file);
}

/** The broker keystore's password, for server.properties. */
export function keystorePassword(secrets: KafkaSecrets): string {
  return readSecret(secrets.keystorePasswordFile);
}

/**
 * Makes the broker's TLS material unless it is there: a CA and a broker certificate it signs, valid for
 * `host` (the advertised host, which librdkafka checks) and the loopback names, in a PKCS#12 keystore. The CA's
 * key is thrown away once it has signed: nothing else is ever signed with it. Made in a scratch folder and
 * moved into place, the CA certificate last, so an interrupted run is redone rather than half-used.
 */
export async function ensureBrokerTls(secrets: KafkaSecrets, host: string): Promise<void> {
  if ([secrets.caFile, secrets.keystore, secrets.keystorePasswordFile].every((file) => existsSync(file)))
    return;
  secretsFolder(secrets.dir);
  const scratch = mkdtempSync(path.join(secrets.dir, '.tls-'));
  try {
    const names = new Set(['127.0.0.1', '::1', 'localhost', host]);
    const altNames = [...names].map((name) => (isIP(name) ? `IP:${name}` : `DNS:${name}`)).join(', ');
    writeFileSync(
      path.join(scratch, 'openssl.cnf'),
      [
        '[req]',
        'distinguished_name = dn',
        'prompt = no',
        '[dn]',
        'CN = Encore local stack',
        '[ca_cert]',
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign, cRLSign',
        'subjectKeyIdentifier = hash',
        '[broker_cert]',
        'basicConstraints = CA:FALSE',
        'keyUsage = critical, digitalSignature, keyEncipherment',
        'extendedKeyUsage = serverAuth',
        `subjectAltName = ${altNames}`,
        'authorityKeyIdentifier = keyid',
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(scratch, 'keystore.password'), `${randomBytes(24).toString('hex')}\n`, {
      mode: 0o600,
    });
    const openssl = (command: string, ...more: string[]) =>
      run('openssl', [...command.split(' '), ...more], { cwd: scratch });
    const newKey = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -config openssl.cnf';
    const serial = randomBytes(16).toString('hex');
    await openssl(
      `req -x509 ${newKey} -extensions ca_cert -days 3650 -keyout ca.key -out ca.pem`,
      '-subj',
      '/CN=Encore CA',
    );
    await openssl(`req -new ${newKey} -keyout broker.key -out broker.csr`, '-subj', `/CN=${host}`);
    await openssl(
      `x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -days 3650 -set_serial 0x${serial} ` +
        '-extfile openssl.cnf -extensions broker_cert -out broker.pem',
    );
    // The keystore's password from a file, not the command line.
    await openssl(
      'pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker ' +
        '-passout file:keystore.password -out broker.p12',
    );
    chmodSync(path.join(scratch, 'broker.p12'), 0o600);
    renameSync(path.join(scratch, 'keystore.password'), secrets.keystorePasswordFile);
    renameSync(path.join(scratch, 'broker.p12'), secrets.keystore);
    renameSync(path.join(scratch, 'ca.pem'), secrets.caFile);
  } catch (error) {
    throw componentError('kafka', `making the broker's TLS certificate in ${secrets.dir} failed`, error);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

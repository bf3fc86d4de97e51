import { createECDH, createHmac, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';

/**
 * Per-agent client certificates (mTLS), signed by a CA the user gives, with node:crypto only: the
 * agent's P-256 key comes from the seed (HMAC-SHA256(seed, "client-key\0" + index) as the private
 * scalar), so the same seed always yields the same key; the certificate is a minimal X.509 v3
 * (subject CN, 1-day-back to 1-year validity, no extensions) written in DER here and signed with
 * the CA's key (ECDSA or RSA, SHA-256).
 */

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);

function int(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && b[1] < 0x80) b = b.subarray(1);
  return tlv(0x02, b[0] >= 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(text: string): Buffer {
  const arcs = text.split('.').map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const a of arcs.slice(2)) {
    const chunk: number[] = [a & 0x7f];
    for (let v = Math.floor(a / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function utcTime(d: Date): Buffer {
  const p = (n: number): string => String(n).padStart(2, '0');
  const text = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(text));
}

/** The TLVs inside a DER SEQUENCE's content: [start, end) of each element. */
function elements(der: Buffer, from: number, to: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = from;
  while (i < to) {
    let n = der[i + 1];
    let head = 2;
    if (n & 0x80) {
      const k = n & 0x7f;
      n = 0;
      for (let j = 0; j < k; j++) n = n * 256 + der[i + 2 + j];
      head = 2 + k;
    }
    out.push([i, i + head + n]);
    i += head + n;
  }
  return out;
}

function contentOf(der: Buffer, [start, end]: [number, number]): [number, number] {
  const n = der[start + 1];
  return [start + 2 + (n & 0x80 ? n & 0x7f : 0), end];
}

/** The subject Name (raw DER) of a certificate: the issuer of what it signs. */
export function subjectOf(certDer: Buffer): Buffer {
  const [cert] = elements(certDer, 0, certDer.length);
  const [tbs] = elements(certDer, ...contentOf(certDer, cert));
  const parts = elements(certDer, ...contentOf(certDer, tbs));
  const v = certDer[parts[0][0]] === 0xa0 ? 1 : 0;
  const [a, b] = parts[v + 4];
  return certDer.subarray(a, b);
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function derToPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}

/** The agent's key, from the seed: the same (seed, index) always gives the same key. */
export function agentKey(seed: string, index: number): KeyObject {
  const d = createHmac('sha256', seed).update(`client-key\0${index}`).digest();
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(d);
  const pub = ecdh.getPublicKey();
  return createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: d.toString('base64url'), x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33, 65).toString('base64url') },
    format: 'jwk',
  });
}

export class ClientCertFactory {
  private readonly issuer: Buffer;
  private readonly caKey: KeyObject;
  private readonly sigAlg: Buffer;

  constructor(caCertPem: string, caKeyPem: string) {
    this.issuer = subjectOf(pemToDer(caCertPem));
    this.caKey = createPrivateKey(caKeyPem);
    const type = this.caKey.asymmetricKeyType;
    if (type === 'ec') this.sigAlg = seq(oid('1.2.840.10045.4.3.2'));
    else if (type === 'rsa') this.sigAlg = seq(oid('1.2.840.113549.1.1.11'), tlv(0x05));
    else throw new Error(`a CA key of type ec or rsa, got ${type ?? 'unknown'}`);
  }

  /** A certificate for `commonName` over `key`'s public half, PEM. `serial` must be unique under the CA. */
  issue(key: KeyObject, commonName: string, serial: Buffer, now = new Date()): string {
    const name = seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(commonName)))));
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    const notBefore = new Date(now.getTime() - 86_400_000);
    const notAfter = new Date(now.getTime() + 365 * 86_400_000);
    const tbs = seq(tlv(0xa0, int(Buffer.from([2]))), int(Buffer.concat([Buffer.from([1]), serial])), this.sigAlg, this.issuer, seq(utcTime(notBefore), utcTime(notAfter)), name, spki);
    const signature = sign('sha256', tbs, this.caKey);
    return derToPem(seq(tbs, this.sigAlg, tlv(0x03, Buffer.from([0]), signature)));
  }
}

// A tiny authoritative DNS server on 127.0.0.1 (UDP, RFC 1035 wire format) for the DNS source's tests:
// A, AAAA and SRV answers with TTLs, NXDOMAIN for unknown names, NODATA for a known name without the type,
// and a failure mode (SERVFAIL, or silence so the client times out). It counts the queries it answers.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';

export type TestRecord =
  | { type: 'A' | 'AAAA'; address: string; ttl: number }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string; ttl: number };

const TYPE_CODE = { A: 1, AAAA: 28, SRV: 33 } as const;
const CODE_TYPE = new Map<number, string>(Object.entries(TYPE_CODE).map(([k, v]) => [v, k]));

export interface TestDnsServer {
  /** `127.0.0.1:port`, for `servers`. */
  readonly address: string;
  readonly port: number;
  /** Replace the records of `name` (lower case, no trailing dot); an empty list makes it NODATA. */
  set(name: string, records: TestRecord[]): void;
  /** Forget a name (NXDOMAIN from now on). */
  remove(name: string): void;
  /** From now on answer every query with SERVFAIL (`servfail`), not at all (`silent`), or normally. */
  mode: 'ok' | 'servfail' | 'silent';
  /** Queries answered (or dropped), by `TYPE name`. */
  readonly queries: Map<string, number>;
  close(): Promise<void>;
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([Buffer.byteLength(p)]), Buffer.from(p)])),
    Buffer.from([0]),
  ]);
}

function encodeIPv6(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g || '0', 16), i * 2);
  });
  return out;
}

function rdata(record: TestRecord): Buffer {
  switch (record.type) {
    case 'A':
      return Buffer.from(record.address.split('.').map(Number));
    case 'AAAA':
      return encodeIPv6(record.address);
    case 'SRV': {
      const head = Buffer.alloc(6);
      head.writeUInt16BE(record.priority, 0);
      head.writeUInt16BE(record.weight, 2);
      head.writeUInt16BE(record.port, 4);
      return Buffer.concat([head, encodeName(record.target)]);
    }
  }
}

export async function startDnsServer(): Promise<TestDnsServer> {
  const zone = new Map<string, TestRecord[]>();
  const queries = new Map<string, number>();
  const socket: Socket = createSocket('udp4');

  const server: TestDnsServer = {
    address: '',
    port: 0,
    mode: 'ok',
    queries,
    set(name, records) {
      for (const r of records) {
        if ((r.type === 'A' && isIP(r.address) !== 4) || (r.type === 'AAAA' && isIP(r.address) !== 6)) {
          throw new Error(`bad ${r.type} address ${r.address}`);
        }
      }
      zone.set(name.toLowerCase(), records);
    },
    remove(name) {
      zone.delete(name.toLowerCase());
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };

  socket.on('message', (msg: Buffer, peer: RemoteInfo) => {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    const qdcount = msg.readUInt16BE(4);
    if (qdcount !== 1 || flags & 0x8000) return;
    // The question: labels up to a zero byte, then type and class.
    let at = 12;
    const labels: string[] = [];
    while (at < msg.length && msg[at] !== 0) {
      const len = msg[at]!;
      labels.push(msg.subarray(at + 1, at + 1 + len).toString());
      at += 1 + len;
    }
    at += 1;
    if (at + 4 > msg.length) return;
    const qtype = msg.readUInt16BE(at);
    const question = msg.subarray(12, at + 4);
    const name = labels.join('.').toLowerCase();
    const typeName = CODE_TYPE.get(qtype) ?? String(qtype);
    const key = `${typeName} ${name}`;
    queries.set(key, (queries.get(key) ?? 0) + 1);
    if (server.mode === 'silent') return;

    let rcode = 0;
    let answers: TestRecord[] = [];
    if (server.mode === 'servfail') rcode = 2;
    else if (!zone.has(name)) rcode = 3;
    else answers = zone.get(name)!.filter((r) => r.type === typeName);

    const header = Buffer.alloc(12);
    header.writeUInt16BE(id, 0);
    // QR, the query's opcode and RD, AA, RA, rcode.
    header.writeUInt16BE(0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const records = answers.map((r) => {
      const data = rdata(r);
      const fixed = Buffer.alloc(12);
      fixed.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      fixed.writeUInt16BE(TYPE_CODE[r.type], 2);
      fixed.writeUInt16BE(1, 4);
      fixed.writeUInt32BE(r.ttl, 6);
      fixed.writeUInt16BE(data.length, 10);
      return Buffer.concat([fixed, data]);
    });
    socket.send(Buffer.concat([header, question, ...records]), peer.port, peer.address);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;
  Object.assign(server, { port, address: `127.0.0.1:${port}` });
  return server;
}

// The two small services every go-plugin server carries besides the plugin's own: the controller the host
// calls to stop the plugin, and gRPC health, which go-plugin's client pings under the name "plugin". Their
// messages are a string and an enum at most, so they are encoded here rather than loaded from more protos.
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

/** The name go-plugin's client asks gRPC health about. */
export const HEALTH_SERVICE_NAME = 'plugin';

/** grpc.health.v1 serving status (the enum's numbers). */
export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;

/** A health check request: which service. */
export interface HealthCheckRequest {
  service: string;
}
/** A health check answer. */
export interface HealthCheckResponse {
  status: number;
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** Fields of a protobuf message: number -> last value (varint as number, length-delimited as bytes). */
function readFields(buf: Buffer): Map<number, number | Buffer> {
  const fields = new Map<number, number | Buffer>();
  let i = 0;
  const readVarint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error('truncated protobuf message');
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const tag = readVarint();
    const field = Math.floor(tag / 8);
    switch (tag & 7) {
      case 0:
        fields.set(field, readVarint());
        break;
      case 2: {
        const len = readVarint();
        fields.set(field, buf.subarray(i, i + len));
        i += len;
        break;
      }
      case 1:
        i += 8;
        break;
      case 5:
        i += 4;
        break;
      default:
        throw new Error(`unsupported protobuf wire type ${tag & 7}`);
    }
  }
  return fields;
}

const empty = {
  serialize: (_: object) => Buffer.alloc(0),
  deserialize: (_: Buffer) => ({}),
};

function unary<Req, Res>(
  path: string,
  req: { serialize: (v: Req) => Buffer; deserialize: (b: Buffer) => Req },
  res: { serialize: (v: Res) => Buffer; deserialize: (b: Buffer) => Res },
): MethodDefinition<Req, Res> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: req.serialize,
    requestDeserialize: req.deserialize,
    responseSerialize: res.serialize,
    responseDeserialize: res.deserialize,
  };
}

/** `plugin.GRPCController`: `Shutdown(Empty) returns (Empty)`. */
export const controllerService: ServiceDefinition = {
  Shutdown: unary<object, object>('/plugin.GRPCController/Shutdown', empty, empty),
};

/** `grpc.health.v1.Health`: `Check` only (go-plugin never watches). */
export const healthService: ServiceDefinition = {
  Check: unary<HealthCheckRequest, HealthCheckResponse>(
    '/grpc.health.v1.Health/Check',
    {
      serialize: ({ service }) => {
        const bytes = Buffer.from(service, 'utf8');
        return bytes.length === 0 ? Buffer.alloc(0) : Buffer.from([0x0a, ...varint(bytes.length), ...bytes]);
      },
      deserialize: (buf) => {
        const service = readFields(buf).get(1);
        return { service: Buffer.isBuffer(service) ? service.toString('utf8') : '' };
      },
    },
    {
      serialize: ({ status }) => (status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, ...varint(status)])),
      deserialize: (buf) => {
        const status = readFields(buf).get(1);
        return { status: typeof status === 'number' ? status : 0 };
      },
    },
  ),
};

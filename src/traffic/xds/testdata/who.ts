// A one-method gRPC service on raw bytes answering its server's name: no .proto file needed.
import * as grpc from '@grpc/grpc-js';

const identity = (b: Buffer) => b;

export const whoService = {
  who: {
    path: '/capstan.test.Who/Who',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;

export const WhoClient = grpc.makeGenericClientConstructor(whoService, 'Who');

/** A server on 127.0.0.1 (a free port) answering `name`. */
export async function startWho(name: string): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(whoService, {
    who: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from(name)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { port, server };
}

/** One call: the name of the server that answered. */
export function who(client: grpc.Client, deadlineMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) =>
    (
      client as unknown as {
        who: (
          req: Buffer,
          options: grpc.CallOptions,
          cb: (err: Error | null, res?: Buffer) => void,
        ) => void;
      }
    ).who(Buffer.alloc(0), { deadline: Date.now() + deadlineMs }, (err, res) =>
      err ? reject(err) : resolve(res!.toString()),
    ),
  );
}

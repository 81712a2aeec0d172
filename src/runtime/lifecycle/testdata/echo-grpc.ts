// A one-method gRPC service with raw byte messages, so the lifecycle tests need no .proto file or codegen.
import * as grpc from '@grpc/grpc-js';

const identity = (b: Buffer) => b;

export const echoService = {
  echo: {
    path: '/capstan.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;

export type EchoClient = grpc.Client & {
  echo(req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
  echo(
    req: Buffer,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: Buffer) => void,
  ): grpc.ClientUnaryCall;
};

const EchoClientCtor = grpc.makeGenericClientConstructor(echoService, 'Echo') as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
) => EchoClient;

/** An insecure client of the echo service at `127.0.0.1:port`. */
export function echoClient(port: number): EchoClient {
  return new EchoClientCtor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** One echo call, as a promise of the answer's text. */
export function callEcho(client: EchoClient, text: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.echo(Buffer.from(text), (err, res) => (err ? reject(err) : resolve(res!.toString()))),
  );
}

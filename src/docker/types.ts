// Wire types of the Docker Engine API (the fields Capstan reads; the daemon sends more).

/** Options every public async call takes. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Filters as the API takes them: `{ label: ['app=web'], status: ['running'] }`; a string means one value. */
export type Filters = Record<string, string | string[] | undefined>;

/** One row of `GET /containers/json`. */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  State: string;
  Status: string;
  Labels: Record<string, string>;
}

/** `GET /containers/{id}/json` (abridged). */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Created: string;
  RestartCount: number;
  Image: string;
  State: {
    Status: string;
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    Dead: boolean;
    Pid: number;
    ExitCode: number;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
  };
  Config: {
    Tty: boolean;
    Image: string;
    Cmd: string[] | null;
    Env: string[] | null;
    Labels: Record<string, string> | null;
    [key: string]: unknown;
  };
  HostConfig: Record<string, unknown>;
  [key: string]: unknown;
}

/** Body of `POST /containers/create` (the common fields; anything else passes through). */
export interface ContainerCreateSpec {
  Image: string;
  Cmd?: string[];
  Entrypoint?: string[];
  Env?: string[];
  Labels?: Record<string, string>;
  Tty?: boolean;
  OpenStdin?: boolean;
  WorkingDir?: string;
  User?: string;
  StopSignal?: string;
  NetworkDisabled?: boolean;
  HostConfig?: {
    NetworkMode?: string;
    AutoRemove?: boolean;
    RestartPolicy?: { Name: 'no' | 'always' | 'unless-stopped' | 'on-failure'; MaximumRetryCount?: number };
    LogConfig?: { Type: string; Config?: Record<string, string> };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** One row of `GET /images/json`. */
export interface ImageSummary {
  Id: string;
  RepoTags: string[] | null;
  Created: number;
  Size: number;
  Labels: Record<string, string> | null;
}

/** A progress object of pull / import. */
export interface ProgressEvent {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  /** Extra data: a push ends with `{ Tag, Digest, Size }`. */
  aux?: { Tag?: string; Digest?: string; Size?: number; ID?: string };
}

/** One `/events` object. `time`/`timeNano` are when the daemon recorded it. */
export interface DockerEvent {
  Type:
    | 'container'
    | 'image'
    | 'volume'
    | 'network'
    | 'daemon'
    | 'plugin'
    | 'node'
    | 'service'
    | 'secret'
    | 'config'
    | string;
  /** `create`, `start`, `die`, `stop`, `kill`, `restart`, `destroy`, `exec_start: sh`, `health_status: healthy`... */
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope?: 'local' | 'swarm';
  time: number;
  timeNano: number;
  /** Legacy fields the daemon still sends for containers. */
  status?: string;
  id?: string;
  from?: string;
}

/** Result of {@link DockerClient.exec}. */
export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

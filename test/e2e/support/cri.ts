import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROTO = join(dirname(fileURLToPath(import.meta.url)), 'cri.proto');

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  dnsConfig?: { servers?: string[]; searches?: string[]; options?: string[] };
  portMappings?: { protocol?: 'TCP' | 'UDP' | 'SCTP'; containerPort: number; hostPort: number; hostIp?: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface PodSandboxStatus {
  id: string;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  network?: { ip: string; additionalIps: { ip: string }[] };
}

/** The few CRI v1 RuntimeService calls kubelet makes for a pod's network, over containerd's socket. */
export class CriClient {
  private readonly client: grpc.Client & Record<string, Function>;

  constructor(socket: string) {
    const def = protoLoader.loadSync(PROTO, { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as any;
    this.client = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  private call<T>(method: string, request: object): Promise<T> {
    return new Promise((resolve, reject) => {
      this.client[method]!(request, { deadline: Date.now() + 120_000 }, (err: Error | null, res: T) => (err ? reject(new Error(`CRI ${method}: ${err.message}`)) : resolve(res)));
    });
  }

  version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }> {
    return this.call('Version', { version: 'v1' });
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    return (await this.call<{ podSandboxId: string }>('RunPodSandbox', { config })).podSandboxId;
  }

  stopPodSandbox(id: string): Promise<unknown> {
    return this.call('StopPodSandbox', { podSandboxId: id });
  }

  removePodSandbox(id: string): Promise<unknown> {
    return this.call('RemovePodSandbox', { podSandboxId: id });
  }

  /** Status, with containerd's verbose `info` JSON parsed. */
  async podSandboxStatus(id: string): Promise<{ status: PodSandboxStatus; info: any }> {
    const res = await this.call<{ status: PodSandboxStatus; info: Record<string, string> }>('PodSandboxStatus', { podSandboxId: id, verbose: true });
    return { status: res.status, info: res.info?.info ? JSON.parse(res.info.info) : {} };
  }

  close(): void {
    this.client.close();
  }
}

export class EtcdError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

/** The watch asked for a revision etcd has compacted away: the caller must read the prefix again. */
export class EtcdCompactedError extends EtcdError {
  constructor(readonly compactRevision: number) {
    super(`etcd compacted the watched revisions (up to ${compactRevision}); reading the prefix again`);
    this.name = 'EtcdCompactedError';
  }
}

/** etcd cancelled the watch or answered it with an error: resuming the same watch would not help. */
export class EtcdWatchCancelled extends EtcdError {
  constructor(reason: string) {
    super(`etcd cancelled the watch: ${reason}`);
    this.name = 'EtcdWatchCancelled';
  }
}

/// How a registry server runs: where it listens and what it allows.
public struct RegistryConfiguration: Sendable {
    /// The address to bind (127.0.0.1 by default: a registry is exposed on purpose, behind a proxy).
    public var host: String
    /// The port; 0 picks a free one.
    public var port: Int
    /// Whether reads (pulls, listings, the Hugging Face endpoints) need a read token. Pushes always need a
    /// push token for the repository's namespace.
    public var requireTokenForReads: Bool
    /// The largest blob upload accepted, in bytes.
    public var maxBlobSize: Int
    /// The largest manifest or JSON request body accepted, in bytes.
    public var maxRequestSize: Int
    /// Threads for store work that blocks (SQLite, file I/O, merges), kept off the event loops.
    public var workerThreads: Int
    /// How long a connection may send nothing, between requests or in the middle of a request body, before
    /// the server closes it (a stalled upload then gives up its spool file).
    public var idleTimeout: Duration

    public init(
        host: String = "127.0.0.1", port: Int = 8080, requireTokenForReads: Bool = false,
        maxBlobSize: Int = 64 << 30, maxRequestSize: Int = 16 << 20, workerThreads: Int = 8,
        idleTimeout: Duration = .seconds(60)
    ) {
        self.host = host
        self.port = port
        self.requireTokenForReads = requireTokenForReads
        self.maxBlobSize = maxBlobSize
        self.maxRequestSize = maxRequestSize
        self.workerThreads = workerThreads
        self.idleTimeout = idleTimeout
    }
}

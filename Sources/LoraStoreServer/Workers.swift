import NIOPosix
import ServiceLifecycle

/// The threads that run store work which blocks (SQLite transactions, file I/O, merges), so it never stalls
/// an event loop or Swift's cooperative threads. Runs as a service: the threads stop when the server shuts
/// down.
public final class Workers: Service, Sendable {
    private let pool: NIOThreadPool

    public init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    /// Runs `body` on a worker thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await pool.shutdownGracefully()
    }
}

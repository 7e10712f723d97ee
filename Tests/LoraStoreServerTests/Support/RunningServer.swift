import Logging
import ServiceLifecycle

/// A server application run for the length of one test.
enum RunningServer {
    /// Runs `app`, which reports the port it listens on to `ports`, until `body` (given that port) returns;
    /// then shuts it down gracefully, and only then returns `body`'s result or throws its error.
    static func with<T: Sendable>(
        _ app: some Service, ports: AsyncStream<Int>, logger: Logger, _ body: @Sendable (Int) async throws -> T
    ) async throws -> T {
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            let result: Result<T, any Error>
            do {
                result = .success(try await body(port))
            } catch {
                result = .failure(error)
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try result.get()
        }
    }
}

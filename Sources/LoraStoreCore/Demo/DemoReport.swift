/// What ``DemoScenario`` did, with the time each phase took.
public struct DemoReport: Sendable, Codable {
    /// A build the demo recorded.
    public struct Build: Sendable, Codable {
        public var name: String
        public var digest: Digest
    }

    public var pushes: [PushResult]
    public var builds: [Build]
    public var pull: PullResult?
    public var stats: StorageStats?
    /// Seconds per phase.
    public var seconds: [String: Double]
}

import Foundation

extension Duration {
    /// The duration in seconds, for APIs that take a `TimeInterval` and for messages.
    var inSeconds: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) * 1e-18
    }
}

import Synchronization

/// Matching steps that many matches share, on top of each match's own budget: an adapter's every module
/// matched against its config's patterns draws on one, so that a config with many patterns and a file
/// with many modules cannot multiply their way past the bound a registry puts on a push.
public final class StepBudget: Sendable {
    private let remaining: Mutex<Int>
    /// The steps the budget started with.
    public let total: Int

    public init(steps: Int) {
        total = steps
        remaining = Mutex(steps)
    }

    /// Takes up to `steps` steps; returns how many it got.
    func take(upTo steps: Int) -> Int {
        remaining.withLock { remaining in
            let granted = min(steps, remaining)
            remaining -= granted
            return granted
        }
    }

    /// Returns steps taken and not spent.
    func giveBack(_ steps: Int) {
        remaining.withLock { $0 += steps }
    }
}

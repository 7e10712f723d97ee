/// Wall-clock timing of benchmark bodies.
enum Timing {
    /// Seconds `body` takes.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let clock = ContinuousClock()
        let elapsed = try clock.measure(body)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// The fastest of up to `repetitions` runs of `body`, stopping early once `budget` seconds have been
    /// spent (at least one run).
    static func best(_ repetitions: Int, budget: Double = 20, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        var spent = 0.0
        for _ in 0..<max(repetitions, 1) {
            let time = try seconds(body)
            best = min(best, time)
            spent += time
            if spent >= budget { break }
        }
        return best
    }

    /// The fastest of up to `repetitions` runs of `reference` and of `body`, run alternately (reference
    /// first) so that both are measured over the same period of a machine whose speed drifts; each minimum
    /// is taken on its own. Stops early once `budget` seconds have been spent (at least one pair).
    static func bestAlternating(
        _ repetitions: Int, budget: Double = 20, _ reference: () throws -> Void, _ body: () throws -> Void
    ) rethrows -> (reference: Double, body: Double) {
        var best = (reference: Double.infinity, body: Double.infinity)
        var spent = 0.0
        for _ in 0..<max(repetitions, 1) {
            let referenceTime = try seconds(reference)
            let bodyTime = try seconds(body)
            best = (min(best.reference, referenceTime), min(best.body, bodyTime))
            spent += referenceTime + bodyTime
            if spent >= budget { break }
        }
        return best
    }
}

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

    /// The fastest of up to `repetitions` runs of `reference` and of each of `bodies`, run in turn (reference
    /// first) so that all are measured over the same period of a machine whose speed drifts; each minimum is
    /// taken on its own. Stops early once `budget` seconds have been spent (at least one round).
    static func bestAlternating(
        _ repetitions: Int, budget: Double = 20, _ reference: () throws -> Void, _ bodies: [() throws -> Void]
    ) throws -> (reference: Double, bodies: [Double]) {
        var best = (reference: Double.infinity, bodies: [Double](repeating: .infinity, count: bodies.count))
        var spent = 0.0
        for _ in 0..<max(repetitions, 1) {
            let referenceTime = try seconds(reference)
            best.reference = min(best.reference, referenceTime)
            spent += referenceTime
            for (index, body) in bodies.enumerated() {
                let bodyTime = try seconds(body)
                best.bodies[index] = min(best.bodies[index], bodyTime)
                spent += bodyTime
            }
            if spent >= budget { break }
        }
        return best
    }
}

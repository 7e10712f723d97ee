import Foundation
import LoraStoreCore
import Synchronization

/// A one-line progress bar on standard error, drawn only when standard error is a terminal and `--json` was
/// not asked for (scripts and CI logs stay quiet), redrawn at most ten times a second, and cleared by
/// ``finish()`` or, at the latest, when the bar goes away (so an error message never lands after a
/// half-drawn bar).
final class ProgressBar: Sendable {
    private let enabled: Bool
    private let state = Mutex<(phase: String, lastDraw: ContinuousClock.Instant?)>(("", nil))

    /// A bar that stays hidden when `quiet` (with `--json`, whose readers want the document alone).
    init(quiet: Bool) {
        enabled = !quiet && isatty(STDERR_FILENO) == 1
    }

    deinit {
        finish()
    }

    /// The handler to give to store operations, or nil when not on a terminal.
    var handler: ProgressHandler? {
        guard enabled else { return nil }
        return { [self] event in update(event) }
    }

    private func update(_ event: ProgressEvent) {
        let line: String? = state.withLock { state in
            let now = ContinuousClock.now
            let finished = event.completed >= event.total
            if state.phase == event.phase, !finished, let last = state.lastDraw, now - last < .milliseconds(100) {
                return nil
            }
            state.phase = event.phase
            state.lastDraw = now
            let fraction = event.total > 0 ? min(1, Double(event.completed) / Double(event.total)) : 1
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let percent = String(format: "%3.0f%%", fraction * 100)
            return "\r\(event.phase.padding(toLength: 10, withPad: " ", startingAt: 0)) \(bar) \(percent)  \(Output.bytes(event.completed)) / \(Output.bytes(event.total))\u{1B}[K"
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    /// Clears the bar's line.
    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

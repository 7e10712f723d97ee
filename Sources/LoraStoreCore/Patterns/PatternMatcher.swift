/// Runs a ``PatternProgram`` over a text by backtracking that never explores the same instruction at the
/// same position twice (RE2's "bit state" matcher): the first match found is the one Python's backtracking
/// finds, and the work is at most the program's size times the text's length, whatever the pattern. Python
/// itself can take exponential time on a pattern such as `(a+)+b`; lorastore matches patterns from pushed
/// configs on the server, so it must not.
///
/// Look-arounds run as matches of their own at each position they are reached, so nested ones multiply
/// that bound. Every match therefore also has a budget of steps, look-arounds and the clearing of their
/// state included (``stepBudget``), drawn from a ``StepBudget`` that other matches share when one is given:
/// a pattern that needs more is refused (``PatternError/Kind/tooCostly``) rather than left to hold a
/// registry's thread. Patterns of PEFT configs take a few hundred steps per module path.
final class PatternMatcher {
    let text: [Unicode.Scalar]
    /// Steps left to this match and its look-arounds.
    private var steps: Int
    private let shared: StepBudget?
    /// Whether the shared budget, rather than the match's own, set `steps`.
    private let limitedByShared: Bool

    /// The steps one match may take, look-arounds included: about 10 ms of matching.
    static let stepBudget = 2_000_000
    /// What starting a match costs besides its steps (copying the text, allocating its state), in steps.
    static let matchOverhead = 64
    /// What testing a non-ASCII scalar against a class, a set or a caseless literal costs (Unicode property
    /// and case-mapping lookups), in steps.
    static let unicodeLookupCost = 16

    init(text: [Unicode.Scalar], sharing shared: StepBudget? = nil) {
        self.text = text
        self.shared = shared
        steps = shared?.take(upTo: Self.stepBudget) ?? Self.stepBudget
        limitedByShared = steps < Self.stepBudget
    }

    /// Returns the steps this match did not spend to the shared budget.
    func finish() {
        shared?.giveBack(max(0, steps))
        steps = 0
    }

    private enum Job {
        case explore(instruction: Int, position: Int)
        case restore(slot: Int, position: Int)
    }

    /// The capture slots of the leftmost-first match of `program` starting at `start` (and ending at `end`,
    /// when given), or nil.
    func match(_ program: PatternProgram, from start: Int, endingAt end: Int? = nil) throws(PatternError) -> [Int]? {
        let columns = text.count + 1
        let states = program.instructions.count * columns
        // Starting costs steps too, as a look-around reached at many positions starts once at each: a step per
        // word of bitmap cleared, one per eight capture slots filled.
        try spend(Self.matchOverhead + (states <= VisitedStates.denseLimit ? (states + 63) / 64 : 0) + program.slotCount / 8)
        var visited = VisitedStates(count: states)
        var slots = [Int](repeating: -1, count: program.slotCount)
        var jobs: [Job] = [.explore(instruction: 0, position: start)]
        while let job = jobs.popLast() {
            var instruction: Int
            var position: Int
            switch job {
            case .restore(let slot, let saved):
                slots[slot] = saved
                continue
            case .explore(let first, let at):
                instruction = first
                position = at
            }
            thread: while true {
                guard visited.insert(instruction * columns + position) else { break thread }
                try spend(1)
                switch program.instructions[instruction] {
                case .scalar(let scalar):
                    guard position < text.count, text[position] == scalar else { break thread }
                    position += 1
                case .foldedScalar(let scalar, let folding):
                    guard position < text.count else { break thread }
                    if !text[position].isASCII { try spend(Self.unicodeLookupCost) }
                    guard folding.lower(text[position]) == scalar else { break thread }
                    position += 1
                case .any:
                    guard position < text.count else { break thread }
                    position += 1
                case .anyButNewline:
                    guard position < text.count, text[position] != "\n" else { break thread }
                    position += 1
                case .set(let set):
                    guard position < text.count else { break thread }
                    if !text[position].isASCII { try spend(Self.unicodeLookupCost) }
                    guard set.contains(text[position]) else { break thread }
                    position += 1
                case .split(let preferred, let other):
                    jobs.append(.explore(instruction: other, position: position))
                    instruction = preferred
                    continue thread
                case .jump(let target):
                    instruction = target
                    continue thread
                case .save(let slot):
                    jobs.append(.restore(slot: slot, position: slots[slot]))
                    slots[slot] = position
                case .assertion(let assertion):
                    guard holds(assertion, at: position) else { break thread }
                case .look(let body, let behind, let negated):
                    let found: Bool
                    if let behind {
                        found = position >= behind ? try match(body, from: position - behind, endingAt: position) != nil : false
                    } else {
                        found = try match(body, from: position) != nil
                    }
                    guard found != negated else { break thread }
                case .match:
                    if let end, position != end { break thread }
                    slots[0] = start
                    slots[1] = position
                    return slots
                }
                instruction += 1
            }
        }
        return nil
    }

    private func spend(_ count: Int) throws(PatternError) {
        steps -= count
        guard steps < 0 else { return }
        let reason = limitedByShared
            ? "matching every module of the adapter against the config's patterns takes more than the "
                + "\(shared?.total ?? 0) steps lorastore spends on one adapter"
            : "matching it against a text of \(text.count) characters takes more than the \(Self.stepBudget) steps "
                + "lorastore spends on one match"
        throw PatternError(kind: .tooCostly, reason: reason, position: 0)
    }

    private func holds(_ assertion: PatternAssertion, at position: Int) -> Bool {
        switch assertion {
        case .textStart: return position == 0
        case .lineStart: return position == 0 || text[position - 1] == "\n"
        case .textEndOrFinalNewline: return position == text.count || (position == text.count - 1 && text[position] == "\n")
        case .lineEnd: return position == text.count || text[position] == "\n"
        case .textEnd: return position == text.count
        case .wordBoundary(let ascii): return isWord(position - 1, ascii: ascii) != isWord(position, ascii: ascii)
        case .notWordBoundary(let ascii):
            // Python's `\B` never matches in an empty text.
            return !text.isEmpty && isWord(position - 1, ascii: ascii) == isWord(position, ascii: ascii)
        }
    }

    private func isWord(_ index: Int, ascii: Bool) -> Bool {
        text.indices.contains(index) && ScalarCategory(kind: .word, ascii: ascii).contains(text[index])
    }
}

/// The (instruction, position) states a match has explored: a bitmap while instructions × positions is small,
/// else a set, so that memory follows the states explored (bounded by the step budget) rather than the
/// product of the pattern's and the text's sizes.
private struct VisitedStates {
    private var bits: [UInt64]
    private var sparse: Set<Int> = []
    private let isDense: Bool

    /// The most states kept as a bitmap: 8 MiB of bits, more than a longest module path (see
    /// ``ModuleMatcher/longestModulePath``) against a largest program needs.
    static let denseLimit = 1 << 26

    init(count: Int) {
        isDense = count <= Self.denseLimit
        bits = isDense ? [UInt64](repeating: 0, count: (count + 63) / 64) : []
    }

    /// Records `state`; false when it was already recorded.
    mutating func insert(_ state: Int) -> Bool {
        guard isDense else { return sparse.insert(state).inserted }
        let (word, mask) = (state >> 6, UInt64(1) << UInt64(state & 63))
        guard bits[word] & mask == 0 else { return false }
        bits[word] |= mask
        return true
    }
}

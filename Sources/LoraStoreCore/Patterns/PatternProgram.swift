/// A compiled pattern: instructions for ``PatternMatcher``, in the style of a Thompson NFA (a `split` tries
/// its preferred target first, which gives Python's leftmost-first choice among matches).
struct PatternProgram: Sendable {
    enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        /// A scalar whose lowercase under the folding is this one.
        case foldedScalar(Unicode.Scalar, CaseFolding)
        case any
        case anyButNewline
        case set(ScalarSet)
        case split(preferred: Int, other: Int)
        case jump(Int)
        /// Records the position in a capture slot: group g's bounds are slots 2g and 2g + 1.
        case save(slot: Int)
        case assertion(PatternAssertion)
        /// A look-around: the sub-program must match (or not, when `negated`) here; a look-behind of
        /// `behind` scalars must match exactly the scalars before the position.
        case look(PatternProgram, behind: Int?, negated: Bool)
        case match
    }

    var instructions: [Instruction]
    /// Capture slots: two for the whole match, two per group.
    var slotCount: Int
    /// Instructions here and in the look-arounds' programs.
    var size: Int
    /// Nodes compiling visited, the look-arounds' included.
    var work: Int

    /// The most instructions a pattern may compile to, its look-arounds' included. Bounded repetitions are
    /// compiled as copies, so `a{100000}` is refused rather than matched slowly.
    static let largestSize = 10_000

    /// The most nodes compiling may visit: copies of a body that emits little (groups that only group, a
    /// look-around's captures) cost their walk even so.
    static let largestCompileWork = 1_000_000

    /// Compiles a parsed pattern with `groupCount` capturing groups; without `recordingGroups` (a
    /// look-around's body), groups only group, and the program records the match's bounds alone.
    init(_ node: PatternNode, groupCount: Int, recordingGroups: Bool = true) throws(PatternError) {
        var compiler = Compiler(recordsGroups: recordingGroups)
        try compiler.emit(node)
        try compiler.append(.match)
        instructions = compiler.instructions
        slotCount = recordingGroups ? 2 * (groupCount + 1) : 2
        size = compiler.size
        work = compiler.work
    }

    private struct Compiler {
        /// Whether groups record their bounds: not inside a look-around, whose groups are not reported.
        let recordsGroups: Bool
        var instructions: [Instruction] = []
        /// Instructions so far, the look-arounds' included.
        var size = 0
        /// Nodes visited so far, the look-arounds' included.
        var work = 0

        mutating func emit(_ node: PatternNode) throws(PatternError) {
            work += 1
            guard work <= PatternProgram.largestCompileWork else {
                throw Self.tooCostly("compiling the pattern visits more than \(PatternProgram.largestCompileWork) parts")
            }
            switch node {
            case .empty: break
            case .scalar(let scalar, let folding): try append(folding == .exact ? .scalar(scalar) : .foldedScalar(scalar, folding))
            case .any(let dotAll): try append(dotAll ? .any : .anyButNewline)
            case .set(let set): try append(.set(set))
            case .sequence(let items): for item in items { try emit(item) }
            case .alternation(let branches): try emitAlternation(branches)
            case .repetition(let body, let min, let max, let lazy): try emitRepetition(body, min: min, max: max, lazy: lazy)
            case .capture(let body, let group):
                guard recordsGroups else { return try emit(body) }
                try append(.save(slot: 2 * group))
                try emit(body)
                try append(.save(slot: 2 * group + 1))
            case .assertion(let assertion): try append(.assertion(assertion))
            case .look(let body, let behind, let negated):
                // Groups inside a look-around are not reported (PEFT reads none).
                let program = try PatternProgram(body, groupCount: 0, recordingGroups: false)
                size += program.size
                work += program.work
                try append(.look(program, behind: behind ? body.fixedWidth : nil, negated: negated))
            }
        }

        private mutating func emitAlternation(_ branches: [PatternNode]) throws(PatternError) {
            var jumpsToEnd: [Int] = []
            for (index, branch) in branches.enumerated() {
                guard index < branches.count - 1 else {
                    try emit(branch)
                    break
                }
                let split = instructions.count
                try append(.match)
                try emit(branch)
                jumpsToEnd.append(instructions.count)
                try append(.match)
                instructions[split] = .split(preferred: split + 1, other: instructions.count)
            }
            for jump in jumpsToEnd { instructions[jump] = .jump(instructions.count) }
        }

        private mutating func emitRepetition(_ body: PatternNode, min: Int, max: Int?, lazy: Bool) throws(PatternError) {
            // Copies of nothing are nothing: `(?:){4294967294}` must not loop four billion times.
            guard !body.compilesToNothing else { return }
            for _ in 0..<min { try emit(body) }
            guard let max else {
                let loop = instructions.count
                try append(.match)
                try emit(body)
                try append(.jump(loop))
                instructions[loop] = choice(continuing: loop + 1, leaving: instructions.count, lazy: lazy)
                return
            }
            var optional: [Int] = []
            for _ in min..<max {
                optional.append(instructions.count)
                try append(.match)
                try emit(body)
            }
            for split in optional {
                instructions[split] = choice(continuing: split + 1, leaving: instructions.count, lazy: lazy)
            }
        }

        private func choice(continuing: Int, leaving: Int, lazy: Bool) -> Instruction {
            lazy ? .split(preferred: leaving, other: continuing) : .split(preferred: continuing, other: leaving)
        }

        /// Appends one instruction (a placeholder when it is patched later).
        mutating func append(_ instruction: Instruction) throws(PatternError) {
            size += 1
            guard size <= PatternProgram.largestSize else {
                throw Self.tooCostly("the pattern compiles to more than \(PatternProgram.largestSize) instructions")
            }
            instructions.append(instruction)
        }

        /// A compile limit exceeded: `what`, with repetitions expanded as the compiler copies them.
        private static func tooCostly(_ what: String) -> PatternError {
            PatternError(kind: .tooCostly, reason: "\(what) (its repetitions expanded), more than lorastore compiles", position: 0)
        }
    }
}

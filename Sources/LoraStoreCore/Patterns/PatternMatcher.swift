/// Runs a ``PatternProgram`` over a text by backtracking that never explores the same instruction at the
/// same position twice (RE2's "bit state" matcher): the first match found is the one Python's backtracking
/// finds, and the work is at most the program's size times the text's length, whatever the pattern. Python
/// itself can take exponential time on a pattern such as `(a+)+b`; lorastore matches patterns from pushed
/// configs on the server, so it must not.
struct PatternMatcher {
    let text: [Unicode.Scalar]

    private enum Job {
        case explore(instruction: Int, position: Int)
        case restore(slot: Int, position: Int)
    }

    /// The capture slots of the leftmost-first match of `program` starting at `start` (and ending at `end`,
    /// when given), or nil.
    func match(_ program: PatternProgram, from start: Int, endingAt end: Int? = nil) -> [Int]? {
        let columns = text.count + 1
        var visited = [UInt64](repeating: 0, count: (program.instructions.count * columns + 63) / 64)
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
                let bit = instruction * columns + position
                let (word, mask) = (bit >> 6, UInt64(1) << UInt64(bit & 63))
                if visited[word] & mask != 0 { break thread }
                visited[word] |= mask
                switch program.instructions[instruction] {
                case .scalar(let scalar):
                    guard position < text.count, text[position] == scalar else { break thread }
                    position += 1
                case .caselessScalar(let scalar):
                    guard position < text.count, text[position].lowercased == scalar else { break thread }
                    position += 1
                case .any:
                    guard position < text.count else { break thread }
                    position += 1
                case .anyButNewline:
                    guard position < text.count, text[position] != "\n" else { break thread }
                    position += 1
                case .set(let set):
                    guard position < text.count, set.contains(text[position]) else { break thread }
                    position += 1
                case .split(let preferred, let other):
                    jobs.append(.explore(instruction: other, position: position))
                    instruction = preferred
                    continue thread
                case .jump(let target):
                    instruction = target
                    continue thread
                case .repeatLoop(let head):
                    let headBit = head * columns + position
                    if visited[headBit >> 6] & (UInt64(1) << UInt64(headBit & 63)) == 0 {
                        instruction = head
                        continue thread
                    }
                case .save(let slot):
                    jobs.append(.restore(slot: slot, position: slots[slot]))
                    slots[slot] = position
                case .assertion(let assertion):
                    guard holds(assertion, at: position) else { break thread }
                case .look(let body, let behind, let negated):
                    let found: Bool
                    if let behind {
                        found = position >= behind && match(body, from: position - behind, endingAt: position) != nil
                    } else {
                        found = match(body, from: position) != nil
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

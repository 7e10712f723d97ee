import Synchronization
import Testing

@testable import LoraStoreCore

@Suite struct ConcurrentlyTests {
    private struct Failure: Error, Equatable {
        let side: String
    }

    /// Both closures run even when one fails (a materialization must list the blob a failed file write
    /// left), and the first one's error wins when both throw.
    @Test func bothRunAndTheFirstErrorWins() throws {
        let (number, text) = try concurrently({ 6 * 7 }, { "done" })
        #expect(number == 42 && text == "done")

        let ran = Atomic<Int>(0)
        #expect(throws: Failure(side: "second")) {
            _ = try concurrently({ ran.add(1, ordering: .relaxed) }, { () throws -> Int in throw Failure(side: "second") })
        }
        #expect(throws: Failure(side: "first")) {
            _ = try concurrently(
                { () throws -> Int in throw Failure(side: "first") },
                { () throws -> Int in
                    ran.add(1, ordering: .relaxed)
                    throw Failure(side: "second")
                })
        }
        #expect(ran.load(ordering: .relaxed) == 2)
    }
}

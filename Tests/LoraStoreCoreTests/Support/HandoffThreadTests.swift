import Foundation
import Synchronization
import Testing

@testable import LoraStoreCore

@Suite struct HandoffThreadTests {
    private struct Failure: Error, Equatable {
        let item: Int
    }

    /// Items run in the order given, one at a time, off the caller's thread, and all have run when `finish`
    /// returns; the caller goes on while an item runs.
    @Test func itemsRunInOrderOnAnotherThreadWhileTheCallerGoesOn() throws {
        let consumer = HandoffThread()
        let order = Mutex<[Int]>([])
        let running = Atomic<Int>(0)
        let release = DispatchSemaphore(value: 0)
        let caller = Thread.current
        for item in 0..<20 {
            try consumer.submit {
                #expect(Thread.current != caller)
                #expect(running.add(1, ordering: .sequentiallyConsistent).newValue == 1)
                if item == 0 { #expect(release.wait(timeout: .now() + 10) == .success) }
                order.withLock { $0.append(item) }
                running.subtract(1, ordering: .sequentiallyConsistent)
            }
            if item == 0 {
                // Item 0 waits for this, which would come too late if `submit` ran it inline.
                release.signal()
            }
        }
        try consumer.finish()
        #expect(order.withLock { $0 } == Array(0..<20))
    }

    /// The first error stops everything after it: the next `submit` throws it without running its item, and
    /// so does `finish`, however often it is called.
    @Test func theFirstErrorStopsLaterItemsAndIsRethrown() throws {
        let consumer = HandoffThread()
        let ran = Mutex<[Int]>([])
        try consumer.submit { ran.withLock { $0.append(0) } }
        try consumer.submit { throw Failure(item: 1) }
        #expect(throws: Failure(item: 1)) { try consumer.submit { ran.withLock { $0.append(2) } } }
        #expect(throws: Failure(item: 1)) { try consumer.finish() }
        #expect(throws: Failure(item: 1)) { try consumer.finish() }
        #expect(ran.withLock { $0 } == [0])
    }

    /// A closure that must not escape (the merge engine's consumer) is released once `finish` returns:
    /// `withoutActuallyEscaping` traps otherwise.
    @Test func nonEscapingWorkIsReleasedByFinish() throws {
        var total = 0
        let add: (Int) -> Void = { total += $0 }
        try withoutActuallyEscaping(add) { add in
            nonisolated(unsafe) let add = add
            let consumer = HandoffThread()
            for value in 1...100 { try consumer.submit { add(value) } }
            try consumer.finish()
        }
        #expect(total == 5050)
    }
}

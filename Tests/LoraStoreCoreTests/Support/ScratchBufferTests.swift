import Testing

@testable import LoraStoreCore

@Suite struct ScratchBufferTests {
    @Test func keptBufferServesTheNextMergeThatFitsInIt() {
        let pool = ScratchBuffer.Pool()
        let first = pool.take(atLeast: 3 << 20)
        #expect(first.bytes.count >= 3 << 20)
        first.bytes.storeBytes(of: 0xA5, toByteOffset: first.bytes.count - 1, as: UInt8.self)
        pool.recycle(first)
        let second = pool.take(atLeast: 1 << 20)
        #expect(second === first)
        // Taken: the pool holds nothing until it is recycled again.
        let third = pool.take(atLeast: 1 << 20)
        #expect(third !== first)
    }

    @Test func tooSmallBufferIsNotReusedAndTheLargerOneIsKept() {
        let pool = ScratchBuffer.Pool()
        let small = pool.take(atLeast: 1 << 20)
        pool.recycle(small)
        let large = pool.take(atLeast: 5 << 20)
        #expect(large !== small)
        #expect(large.bytes.count >= 5 << 20)
        pool.recycle(large)
        pool.recycle(small)
        #expect(pool.take(atLeast: 4 << 20) === large)
    }

    /// The merge engine's pool keeps both of a merge's output buffers: the largest ones, each handed out to
    /// the smallest request it fits.
    @Test func aPoolKeepsItsCapacityOfTheLargestBuffers() {
        let pool = ScratchBuffer.Pool(keeping: 2)
        let (small, medium, large) = (pool.take(atLeast: 3 << 20), pool.take(atLeast: 4 << 20), pool.take(atLeast: 5 << 20))
        pool.recycle(small)
        pool.recycle(large)
        pool.recycle(medium)
        #expect(pool.take(atLeast: 1 << 20) === medium)
        #expect(pool.take(atLeast: 1 << 20) === large)
        #expect(pool.take(atLeast: 1 << 20) !== small)
    }

    /// Idle buffers go back to the system only once nothing used the pool for the given time; a use in
    /// between (a merge taking or giving back a buffer) starts that time again.
    @Test func idleBuffersAreReleasedOnlyAfterTheyWentUnusedForTheGivenTime() {
        let pool = ScratchBuffer.Pool(keeping: 2)
        let (first, second) = (pool.take(atLeast: 3 << 20), pool.take(atLeast: 4 << 20))
        pool.recycle(first)
        let recycled = ContinuousClock.now
        pool.recycle(second)
        #expect(pool.releaseIdle(unusedFor: .seconds(60), now: recycled + .seconds(30)) == 0)
        #expect(pool.take(atLeast: 1 << 20) === first, "kept while in use")
        pool.recycle(first)
        let held = first.bytes.count + second.bytes.count
        #expect(pool.releaseIdle(unusedFor: .seconds(60), now: .now + .seconds(61)) == held)
        #expect(pool.releaseIdle(unusedFor: .seconds(60), now: .now + .seconds(61)) == 0, "nothing left to release")
        let fresh = pool.take(atLeast: 1 << 20)
        #expect(fresh !== first && fresh !== second)
    }

    @Test func buffersAreAlignedForVectorStores() {
        let buffer = ScratchBuffer.Pool().take(atLeast: 100)
        #expect(Int(bitPattern: buffer.bytes.baseAddress) % 64 == 0)
        buffer.bytes.initializeMemory(as: UInt8.self, repeating: 7)
        #expect(buffer.bytes.allSatisfy { $0 == 7 })
    }
}

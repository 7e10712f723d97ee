import Foundation
import Testing
@testable import LoraStoreCore

@Suite struct ProcessLivenessTests {
    /// A process that exited is gone even while nobody has reaped it (a zombie), as when `timeout -s KILL`
    /// kills a pull and dies too: the pull run again must be free to take over its staging folder.
    @Test func anExitedProcessIsGoneEvenUnreaped() throws {
        var pid: pid_t = 0
        let arguments: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { arguments.forEach { free($0) } }
        try #require(posix_spawn(&pid, "/bin/true", nil, nil, arguments, environ) == 0)
        var status: Int32 = 0
        defer { waitpid(pid, &status, 0) }
        let deadline = ContinuousClock.now + .seconds(10)
        while !ProcessLiveness.hasExited(pid), ContinuousClock.now < deadline { usleep(5_000) }
        #expect(ProcessLiveness.hasExited(pid), "an exited, unreaped child still counts as running")
        #expect(!ProcessLiveness.hasExited(getpid()))
    }
}

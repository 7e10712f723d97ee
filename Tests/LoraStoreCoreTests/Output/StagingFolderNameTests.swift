import Foundation
import Testing
@testable import LoraStoreCore

@Suite struct StagingFolderNameTests {
    /// Names read back as written, whatever dots and dashes the destination has; two names for one
    /// destination in one process differ.
    @Test func namesReadBackAndEachWriteHasItsOwn() {
        for destination in ["model", "Llama-3.1-8B", "a.b-c", "serve-abc.42.18446744073709551615"] {
            let first = StagingFolderName(writing: destination, kind: "partial")
            let second = StagingFolderName(writing: destination, kind: "partial")
            #expect(first.name != second.name)
            #expect(StagingFolderName(parsing: first.name) == first, "\(first.name)")
            #expect(!first.isAbandoned, "this process runs")
        }
    }

    @Test func otherNamesAreNotStagingFolders() {
        for name in ["model", ".model", ".model.partial-123", ".model.partial-abc-1-2", "-.partial-0badc0de-1-2", ".partial-0badc0de-1-2"] {
            #expect(StagingFolderName(parsing: name) == nil, "\(name)")
        }
        #expect(StagingFolderName(parsing: ".model.partial-0badc0de-1-2")?.isAbandoned == false, "another machine's")
    }
}

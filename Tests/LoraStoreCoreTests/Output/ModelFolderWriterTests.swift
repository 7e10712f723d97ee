import Foundation
import Testing
@testable import LoraStoreCore

@Suite("Model folders written whole")
struct ModelFolderWriterTests {
    private struct Interrupted: Error {}

    /// What the folder holds beside its safetensors files (a `separate` build's adapters) is written before
    /// the folder takes its name: a failure there leaves no folder that looks finished.
    @Test func extraContentsAreWrittenBeforeTheFolderTakesItsName() throws {
        try TemporaryDirectory.with { directory in
            let layout = try ModelLayout(tensors: [("w", .f32, [2])], metadata: [:], maxShardSize: nil)
            let values: [Float] = [1, 2]
            func write(_ name: String, adding: @escaping (URL) throws -> Void) throws -> URL {
                let destination = directory.appending(path: name)
                let writer = try ModelFolderWriter(destination: destination, layout: layout)
                try values.withUnsafeBytes { try writer.append($0) }
                try writer.finish(addingContents: adding)
                return destination
            }
            #expect(throws: Interrupted.self) {
                try write("interrupted") { staging in
                    try Data([1]).write(to: staging.appending(path: "first-adapter"))
                    throw Interrupted()
                }
            }
            #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "interrupted").path))
            let whole = try write("whole") { try Data([1]).write(to: $0.appending(path: "adapter")) }
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: whole.path)) == ["model.safetensors", "adapter"])
        }
    }

    /// A file that appears in the destination while the folder is written (a user's, or another pull's into
    /// the same folder) is never deleted: the finished folder does not take its place and says why, while an
    /// empty folder there is replaced.
    @Test func whatAppearsInTheDestinationMeanwhileIsKept() throws {
        try TemporaryDirectory.with { directory in
            let layout = try ModelLayout(tensors: [("w", .f32, [2])], metadata: [:], maxShardSize: nil)
            let values: [Float] = [1, 2]
            func writer(_ destination: URL) throws -> ModelFolderWriter {
                let writer = try ModelFolderWriter(destination: destination, layout: layout)
                try values.withUnsafeBytes { try writer.append($0) }
                return writer
            }
            let taken = directory.appending(path: "taken")
            let late = try writer(taken)
            try FileManager.default.createDirectory(at: taken, withIntermediateDirectories: true)
            try Data("precious".utf8).write(to: taken.appending(path: "notes.txt"))
            #expect {
                try late.finish()
            } throws: { error in
                "\(error)".contains("exists and is not an empty folder")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: taken.path) == ["notes.txt"])
            #expect(try String(contentsOf: taken.appending(path: "notes.txt"), encoding: .utf8) == "precious")

            let emptied = directory.appending(path: "emptied")
            let onTime = try writer(emptied)
            try FileManager.default.createDirectory(at: emptied, withIntermediateDirectories: true)
            try onTime.finish()
            #expect(try FileManager.default.contentsOfDirectory(atPath: emptied.path) == ["model.safetensors"])

            // A link to an empty folder is written through: the folder takes the model, the link stays.
            let target = directory.appending(path: "target")
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            let link = directory.appending(path: "link")
            try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
            try writer(link).finish()
            #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == ["model.safetensors"])
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == target.path)

            // A link to nothing is refused before anything is written, saying so.
            let dangling = directory.appending(path: "dangling")
            try FileManager.default.createSymbolicLink(at: dangling, withDestinationURL: directory.appending(path: "gone"))
            #expect {
                try writer(dangling)
            } throws: { error in
                "\(error)".contains("is a link to") && "\(error)".contains("which does not exist")
            }
        }
    }
}

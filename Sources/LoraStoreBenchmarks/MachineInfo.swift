import CZlib
import Foundation

/// The facts about the machine printed with every run.
struct MachineInfo {
    let cpu: String
    let cores: Int
    let memory: UInt64
    let system: String
    let zlib: String
    let date: Date
    /// `/proc/loadavg` (1, 5, 15 minutes) when the run started: other work on the machine skews every figure.
    let loadAverage: String

    static func current() -> MachineInfo {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n")
            .first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }.map { line in
            ["avx2", "fma", "f16c", "avx512f"].filter { line.split(separator: " ").contains(Substring($0)) }
        } ?? []
        return MachineInfo(
            cpu: flags.isEmpty ? model : "\(model) (\(flags.joined(separator: ", ")))",
            cores: ProcessInfo.processInfo.activeProcessorCount,
            memory: ProcessInfo.processInfo.physicalMemory,
            system: ProcessInfo.processInfo.operatingSystemVersionString,
            zlib: String(cString: zlibVersion()),
            date: Date(),
            loadAverage: currentLoadAverage())
    }

    /// The 1, 5 and 15-minute load averages.
    static func currentLoadAverage() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    var dateText: String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    var summary: String {
        "Machine: \(cpu), \(cores) cores, \(Format.bytes(Int(memory))) RAM, \(system), zlib \(zlib); load \(loadAverage); \(dateText)"
    }
}

import ArgumentParser
import LoraStoreCore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every blob against the index (and with --deep, its digest); exit non-zero on any fault.")

    @Flag(help: "Re-hash every blob.")
    var deep = false

    @Flag(help: """
        Drop damaged build tensors (the next pull rebuilds them), remove stray files, and remove damaged base \
        and adapter files (push the same files again to restore them).
        """)
    var repair = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let report = try global.openStore().verify(deep: deep, repair: repair)
        if global.json {
            try Output.json(report)
        } else {
            let depth = deep ? "re-hashed" : "checked"
            print("\(depth) \(report.blobsChecked) blob(s): \(report.faults.isEmpty ? "no faults" : "\(report.faults.count) fault(s)")")
            for fault in report.faults {
                let status = fault.repaired ? " [repaired]" : (repair ? " [cannot repair: push the base or adapter again]" : "")
                print("  \(fault.kind.rawValue): \(fault.path): \(fault.detail)\(status)")
            }
        }
        if !report.unrepairable.isEmpty {
            throw ExitCode(1)
        }
    }
}

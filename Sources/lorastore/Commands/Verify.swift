import ArgumentParser
import LoraStoreCore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every blob against the index (and with --deep, its digest); exit non-zero on any fault.",
        discussion: """
            Leftover files (left by an interrupted write, or by an eviction while the store was busy) are \
            listed but are not faults: every stored model is whole, and gc removes them after its grace \
            period (--repair now).
            """)

    @Flag(help: "Re-hash every blob.")
    var deep = false

    @Flag(help: """
        Drop damaged build tensors (the next pull rebuilds them), remove stray files, and remove damaged base \
        and adapter files (push the same files again to restore them).
        """)
    var repair = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let report: VerifyReport
        do {
            report = try global.openStore().verify(deep: deep, repair: repair)
        } catch let error as StoreError {
            // An index that cannot be opened is a fault to report like any other.
            guard case .damagedIndex(let path, _) = error else { throw error }
            report = .damagedIndex(path: path, detail: error.description, deep: deep)
        }
        if global.json {
            try Output.json(report)
        } else {
            let depth = deep ? "re-hashed" : "checked"
            let faults = report.faults.filter { $0.repaired || !$0.kind.isLeftover }
            print("\(depth) \(report.blobsChecked) blob(s): \(faults.isEmpty ? "no faults" : "\(faults.count) fault(s)")")
            for fault in faults {
                let cannot = fault.kind == .damagedIndex ? "" : (repair ? " [cannot repair: push the base or adapter again]" : "")
                let status = fault.repaired ? " [repaired]" : cannot
                print("  \(fault.kind.rawValue): \(fault.path): \(fault.detail)\(status)")
            }
            if !report.leftovers.isEmpty {
                print("\(report.leftovers.count) leftover file(s), not faults: gc removes them after its grace period, verify --repair now")
                for leftover in report.leftovers {
                    print("  \(leftover.kind.rawValue): \(leftover.path): \(leftover.detail)")
                }
            }
        }
        if !report.unrepairable.isEmpty {
            throw ExitCode(1)
        }
    }
}

import Foundation

/// The results of a run: sections of rows, printed as each row is measured and rendered as Markdown at
/// the end.
struct BenchmarkReport {
    /// One table with the method that produced it.
    struct Section {
        let title: String
        let method: [String]
        let columns: [String]
        var rows: [[String]] = []
        var notes: [String] = []
    }

    let machine: MachineInfo
    let options: BenchmarkOptions
    private(set) var sections: [Section] = []
    private var finished: Date?
    private var finalLoadAverage = ""

    init(machine: MachineInfo, options: BenchmarkOptions) {
        self.machine = machine
        self.options = options
    }

    /// Starts a section; following rows and notes go into it.
    mutating func begin(_ title: String, method: [String], columns: [String]) {
        sections.append(Section(title: title, method: method, columns: columns))
        print("\n== \(title)")
        print(columns.joined(separator: " | "))
    }

    /// Adds a row to the current section and prints it.
    mutating func row(_ cells: [String]) {
        precondition(!sections.isEmpty, "row before the first section")
        sections[sections.count - 1].rows.append(cells)
        print(cells.joined(separator: " | "))
    }

    /// Adds a remark under the current section's table and prints it.
    mutating func note(_ text: String) {
        precondition(!sections.isEmpty, "note before the first section")
        sections[sections.count - 1].notes.append(text)
        print("  note: \(text)")
    }

    /// The section on generating the synthetic data.
    mutating func addGeneration(_ generated: [Workspace.Generated], references: ReferenceBandwidths) {
        guard !generated.isEmpty else { return }
        begin(
            "Synthetic data generation",
            method: [
                "`SyntheticModel.write(to:)`: weights N(0, 0.02) from seeded xoshiro256++ streams (Irwin–Hall(4) "
                    + "approximation of the normal), converted to the model's type and streamed tensor by tensor "
                    + "through `SafetensorsWriter` into the page cache (no fsync).",
            ],
            columns: ["what", "bytes", "time", "rate (× cached file copy)"])
        for item in generated {
            row([
                item.description, Format.bytes(item.bytes), Format.seconds(item.seconds),
                Format.rate(Double(item.bytes) / item.seconds, of: references.fileCopyCached),
            ])
        }
    }

    mutating func finish() {
        finished = Date()
        finalLoadAverage = MachineInfo.currentLoadAverage()
    }

    /// The results as a Markdown section (level-2 headings).
    func markdown() -> String {
        var lines: [String] = []
        lines.append("## Results")
        lines.append("")
        lines.append("- Date: \(machine.dateText)"
            + (finished.map { String(format: " (run took %.1f min)", $0.timeIntervalSince(machine.date) / 60) } ?? ""))
        lines.append("- CPU: \(machine.cpu); \(machine.cores) cores available")
        lines.append("- Memory: \(Format.bytes(Int(machine.memory)))")
        lines.append("- System: \(machine.system); zlib \(machine.zlib)")
        lines.append("- Load average (1, 5, 15 min): \(machine.loadAverage) at the start, \(finalLoadAverage) at the end "
            + "(\(machine.cores) cores; above \(machine.cores) means other work shared the CPU)")
        lines.append("- Parameters: \(options.summary)")
        for section in sections {
            lines.append("")
            lines.append("### \(section.title)")
            lines.append("")
            lines.append(contentsOf: section.method)
            lines.append("")
            lines.append("| " + section.columns.joined(separator: " | ") + " |")
            lines.append("|" + section.columns.map { _ in "---" }.joined(separator: "|") + "|")
            for row in section.rows {
                lines.append("| " + row.joined(separator: " | ") + " |")
            }
            if !section.notes.isEmpty {
                lines.append("")
                lines.append(contentsOf: section.notes.map { "- \($0)" })
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

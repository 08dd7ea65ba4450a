import Foundation

/// Progress on stderr: a redrawn bar on a terminal, a plain line per tenth otherwise.
///
/// `total` is in whatever `update` counts (entries, bytes of a file); the rate shown is of
/// `count` in `unit` when those are given (rows/s while the bar follows bytes). With no total
/// (standard input) it shows the count and the rate alone.
struct ProgressBar {
    let label: String
    let total: Int?
    let unit: String?
    private let started = Date()
    private let interactive = Output.stderrIsTerminal
    private var lastTenth = -1
    private var lastDraw = Date.distantPast
    private var lastNote = Date()
    private var finished = false

    init(_ label: String, total: Int?, unit: String? = nil) {
        self.label = label
        self.total = total.map { max($0, 1) }
        self.unit = unit
    }

    /// `detail` follows the rate (a sync's requests a second against its budget).
    mutating func update(_ done: Int, count: Int? = nil, detail: String? = nil) {
        let counted = count ?? done
        let rate = Double(counted) / max(Date().timeIntervalSince(started), 0.001)
        let rateText =
            (unit.map { "\(counted) \($0), \(Int(rate)) \($0)/s" } ?? "\(Int(rate))/s") + (detail.map { ", \($0)" } ?? "")
        if interactive {
            guard Date().timeIntervalSince(lastDraw) > 0.1 || done >= (total ?? .max) else { return }
            lastDraw = Date()
            guard let total else {
                FileHandle.standardError.write(Data("\r\(label) \(rateText) ".utf8))
                return
            }
            let width = 30
            let filled = min(width, done * width / total)
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let position = unit == nil ? "\(done)/\(total) " : "\(Self.percent(done, of: total)) "
            let eta = Self.eta(done: done, total: total, seconds: Date().timeIntervalSince(started))
            FileHandle.standardError.write(Data("\r\(label) \(bar) \(position)\(rateText)\(eta) \u{1b}[K".utf8))
        } else if let total {
            let tenth = done * 10 / total
            guard tenth > lastTenth else { return }
            lastTenth = tenth
            let position = unit == nil ? "\(done)/\(total)" + (detail.map { ", \($0)" } ?? "") : rateText
            Output.note("\(label): \(position) (\(Self.percent(done, of: total)))")
        } else if Date().timeIntervalSince(lastNote) >= 5 {
            lastNote = Date()
            Output.note("\(label): \(rateText)")
        }
    }

    /// `, ETA 1m05s` from the pace so far; nothing before a second has passed or once done.
    static func eta(done: Int, total: Int, seconds: Double) -> String {
        guard seconds >= 1, done > 0, done < total else { return "" }
        let left = Int((Double(total - done) * seconds / Double(done)).rounded(.up))
        return left >= 60 ? ", ETA \(left / 60)m\(String(format: "%02d", left % 60))s" : ", ETA \(left)s"
    }

    /// `7%`, `33%`: rounded down, so that 100% means done, and below 1% with a decimal
    /// (`0.4%`) so that a long job shows it has started.
    static func percent(_ done: Int, of total: Int) -> String {
        let share = Double(min(done, total)) * 100 / Double(max(total, 1))
        return share < 1 && done > 0 ? String(format: "%.1f%%", (share * 10).rounded(.down) / 10) : "\(Int(share))%"
    }

    /// Ends the bar's line; later calls do nothing.
    mutating func finish() {
        if interactive && !finished { FileHandle.standardError.write(Data("\n".utf8)) }
        finished = true
    }
}

import Foundation

/// Progress on stderr: a redrawn bar on a terminal, a plain line per tenth otherwise.
struct ProgressBar {
    let label: String
    let total: Int
    private let started = Date()
    private let interactive = Output.stderrIsTerminal
    private var lastTenth = -1
    private var lastDraw = Date.distantPast

    init(_ label: String, total: Int) {
        self.label = label
        self.total = max(total, 1)
    }

    mutating func update(_ done: Int) {
        let rate = Double(done) / max(Date().timeIntervalSince(started), 0.001)
        if interactive {
            guard Date().timeIntervalSince(lastDraw) > 0.1 || done >= total else { return }
            lastDraw = Date()
            let width = 30
            let filled = min(width, done * width / total)
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label) \(bar) \(done)/\(total) \(Int(rate))/s ".utf8))
        } else {
            let tenth = done * 10 / total
            guard tenth > lastTenth else { return }
            lastTenth = tenth
            Output.note("\(label): \(done)/\(total) (\(tenth * 10)%)")
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

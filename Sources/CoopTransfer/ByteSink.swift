import Foundation

/// Receives a download's bytes as they arrive, e.g. to decompress and unpack while downloading.
public protocol ByteSink: AnyObject {
    func consume(_ bytes: UnsafeRawBufferPointer) throws
    /// Called once all bytes arrived, before anything is committed: flush, and fail if incomplete.
    func finish() throws
}

extension ByteSink {
    public func finish() throws {}
}

import CoopSystem
import Foundation
import Testing

/// Files of /proc are read to their end: a host with many mounts has a mountinfo longer than one page.
@Suite("Kernel files")
struct KernelFileTests {
    @Test("A /proc file longer than a page is read whole, as read(2) gives it")
    func readsPastTheFirstPage() throws {
        let text = try #require(FileSystem.kernelText("/proc/self/maps"))
        // This process maps far more than one page of lines; a page-sized read would stop near 4096 bytes.
        #expect(text.utf8.count > 8192, "\(text.utf8.count) bytes")
        #expect(text.hasSuffix("\n"), "the last line is whole")
    }
}

package testutil

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// PeakRSSGrowth is how much this process's peak resident set size (VmHWM) grew while f ran,
// in bytes; the peak is reset first (/proc/self/clear_refs), so earlier tests do not count.
func PeakRSSGrowth(t testing.TB, f func()) int64 {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS: %v", err)
	}
	before := vmHWM(t)
	f()
	return vmHWM(t) - before
}

func vmHWM(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("reading the peak RSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parsing VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

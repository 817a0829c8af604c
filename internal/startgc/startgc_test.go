package startgc

import (
	"runtime/debug"
	"testing"
)

func TestResolveHoldsTheCollectorUntilRestore(t *testing.T) {
	before := debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)

	hold([]string{"helmops", "version"})
	if p := debug.SetGCPercent(150); p != 150 {
		t.Fatalf("another command than resolve changed the GC percentage to %d", p)
	}
	hold([]string{"helmops", "resolve", "--repo", "https://charts.example.com"})
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("resolve: the collector runs (GC percentage %d) while packages initialise", p)
	}
	Restore()
	if p := debug.SetGCPercent(150); p != 150 {
		t.Fatalf("after Restore the GC percentage is %d, not the 150 in effect before", p)
	}
	Restore() // a second call changes nothing
	if p := debug.SetGCPercent(150); p != 150 {
		t.Fatalf("a second Restore set the GC percentage to %d", p)
	}
}

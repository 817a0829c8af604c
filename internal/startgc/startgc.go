// Package startgc holds the garbage collector off while the packages linked into helmops
// initialise, for the one short-lived command that gains from it: `helmops resolve`.
//
// Initialising everything the binary links (client-go's schemes, Helm, jsonschema's
// meta-schemas) allocates about 8.5 MB and, with the default GOGC, runs the collector four times
// before main starts, in a process that lives about 100 ms. Held off, those cycles become one,
// when the command starts (Restore). Packages are initialised in import path order as far as
// their imports allow; this one imports only the runtime's and os, so it runs before the heavy
// initialisers.
package startgc

import (
	"os"
	"runtime/debug"
)

// held is the GC percentage in effect before hold, or notHeld.
var held = notHeld

const notHeld = -2

func init() { hold(os.Args) }

// hold turns the collector off when the command line is `helmops resolve …`.
func hold(args []string) {
	if held == notHeld && len(args) > 1 && args[1] == "resolve" {
		held = debug.SetGCPercent(-1)
	}
}

// Restore puts the collector back as it was (GOGC, or 100) if hold turned it off. Commands call
// it before their work, which may need the collector: a full parse of a large index allocates
// hundreds of MB.
func Restore() {
	if held != notHeld {
		debug.SetGCPercent(held)
		held = notHeld
	}
}

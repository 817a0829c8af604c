// Package version holds the build's version, stamped by the Makefile with -ldflags -X.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

var (
	// Version is the helmops release, e.g. v0.1.0; "dev" for local builds.
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = ""
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the running binary's version information. Without -ldflags it falls back to the
// VCS revision the Go toolchain recorded.
func Get() Info {
	commit := Commit
	if commit == "" {
		commit = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					commit = s.Value[:12]
				}
			}
		}
	}
	return Info{
		Version:   Version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  fmt.Sprintf("%s/%s", runtime.GOOS, runtime.GOARCH),
	}
}

// String is the one-line form printed by `helmops version`.
func (i Info) String() string {
	return fmt.Sprintf("helmops %s (commit %s, %s, %s)", i.Version, i.Commit, i.GoVersion, i.Platform)
}

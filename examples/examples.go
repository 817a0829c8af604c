// Package examples embeds the example HelmOps that `helmops dev` applies. They point at the
// repositories and registry of the dev environment (127.0.0.1:8879, :8880 and :5055).
package examples

import "embed"

// Files holds every example manifest.
//
//go:embed *.yaml
var Files embed.FS

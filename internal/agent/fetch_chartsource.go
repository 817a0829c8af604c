package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/helmops/helmops/internal/chartsource"
)

// ResolverFetcher downloads through the shared chartsource resolver: HTTP repositories through
// the cached index (verifying the archive's digest), OCI registries by the pinned manifest digest
// (by exact tag when there is no pin), tarball URLs.
type ResolverFetcher struct {
	Resolver *chartsource.Resolver
}

// Fetch downloads the archive of req, refusing more than maxBytes, and returns it with the
// digest of what was downloaded: the manifest digest for an OCI registry, the sha256 of the
// archive otherwise.
func (f ResolverFetcher) Fetch(ctx context.Context, req ChartRequest, maxBytes int64) ([]byte, string, error) {
	auth := chartsource.Auth{}
	if req.Secret != nil {
		a, err := chartsource.AuthFromSecret(req.Secret)
		if err != nil {
			return nil, "", err
		}
		auth = a
	}
	if req.InsecureSkipTLSVerify {
		auth.InsecureSkipTLSVerify = true
	}
	if len(req.CABundle) > 0 {
		ca := append([]byte{}, auth.CAFile...)
		if len(ca) > 0 && ca[len(ca)-1] != '\n' {
			ca = append(ca, '\n')
		}
		auth.CAFile = append(ca, req.CABundle...)
	}
	data, res, err := f.Resolver.FetchArchive(ctx, chartsource.Ref{Repo: req.Repo, Chart: req.Chart, Version: req.Version, Digest: req.Digest}, auth, maxBytes)
	if err != nil {
		return nil, "", err
	}
	if res != nil && res.Kind == chartsource.KindOCI && res.Digest != "" {
		return data, res.Digest, nil
	}
	sum := sha256.Sum256(data)
	return data, "sha256:" + hex.EncodeToString(sum[:]), nil
}

// DigestMismatchError is a downloaded chart whose content is not the one the controller
// resolved: the version was re-published with other content (or a tag moved) after the
// Bundle was written. The agent installs nothing from it.
type DigestMismatchError struct {
	Chart, Expected, Actual string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("refusing chart %s: its content has digest %s but the controller resolved %s (spec.helmChartOptions.helmOpChartDigest); "+
		"the version was re-published with other content: nothing is installed or upgraded until the controller resolves the chart again or the original content is restored",
		e.Chart, e.Actual, e.Expected)
}

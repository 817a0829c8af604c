package agent

import (
	"context"

	"github.com/helmops/helmops/internal/chartsource"
)

// ResolverFetcher downloads through the shared chartsource resolver: HTTP repositories through
// the cached index (verifying the archive's digest), OCI registries by exact tag, tarball URLs.
type ResolverFetcher struct {
	Resolver *chartsource.Resolver
}

// Fetch downloads the archive of req, refusing more than maxBytes.
func (f ResolverFetcher) Fetch(ctx context.Context, req ChartRequest, maxBytes int64) ([]byte, error) {
	auth := chartsource.Auth{}
	if req.Secret != nil {
		a, err := chartsource.AuthFromSecret(req.Secret)
		if err != nil {
			return nil, err
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
	data, _, err := f.Resolver.FetchArchive(ctx, chartsource.Ref{Repo: req.Repo, Chart: req.Chart, Version: req.Version}, auth, maxBytes)
	return data, err
}

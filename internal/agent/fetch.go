package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// ChartRequest is one exact chart version to download, with what the BundleDeployment says
// about reaching the repository.
type ChartRequest struct {
	Repo, Chart, Version string
	// Secret is the copied repository secret, nil when the BundleDeployment names none.
	Secret *corev1.Secret
	// InsecureSkipTLSVerify and CABundle come from spec.helmChartOptions.
	InsecureSkipTLSVerify bool
	CABundle              []byte
	// Digest is spec.helmChartOptions.helmOpChartDigest: the content the controller resolved,
	// empty when it pinned none.
	Digest string
}

// cacheKey identifies an archive in the local cache: the chart reference and exact version plus
// a fingerprint of everything used to reach it (secret content, TLS settings). An archive is
// only ever served to a request that could have downloaded it itself, so changing to wrong
// credentials fails as it would without the cache. The fingerprint is a hash and reveals nothing.
func cacheKey(req ChartRequest) string {
	h := sha256.New()
	write := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	write(req.Repo)
	write(req.Chart)
	write(req.Version)
	if req.InsecureSkipTLSVerify {
		write("insecure")
	}
	write(string(req.CABundle))
	write(req.Digest)
	if req.Secret != nil {
		write(string(req.Secret.Type))
		keys := make([]string, 0, len(req.Secret.Data))
		for k := range req.Secret.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			write(k)
			write(string(req.Secret.Data[k]))
		}
	}
	return "ref:" + hex.EncodeToString(h.Sum(nil))
}

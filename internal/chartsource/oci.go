package chartsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/helmops/helmops/internal/chartversion"
	"github.com/helmops/helmops/internal/redact"
)

// helmChartLayer is the media type of a chart archive in an OCI manifest.
const helmChartLayer = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

// parseOCIRef reads oci://registry/path/chart[:tag].
func parseOCIRef(repo string) (registry.Reference, error) {
	rest := strings.TrimSpace(repo)
	if len(rest) < 6 || !strings.EqualFold(rest[:6], "oci://") {
		return registry.Reference{}, fmt.Errorf("%q is not an oci:// reference", redact.URL(repo))
	}
	rest = strings.TrimRight(rest[6:], "/")
	ref, err := registry.ParseReference(rest)
	if err != nil {
		return registry.Reference{}, fmt.Errorf("%q is not a chart reference of the form oci://registry/path/chart: %v", repo, err)
	}
	if strings.HasPrefix(ref.Reference, "sha256:") {
		return registry.Reference{}, fmt.Errorf("%q names a digest: give the chart reference without it and the version in helm.version", repo)
	}
	return ref, nil
}

// ociRepository opens the chart repository of ref with the credentials and TLS of a.
func (r *Resolver) ociRepository(ref registry.Reference, a Auth) (*remote.Repository, error) {
	base, err := r.httpClient(a)
	if err != nil {
		return nil, err
	}
	repo, err := remote.NewRepository(ref.Registry + "/" + ref.Repository)
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = a.PlainHTTP
	repo.TagListPageSize = r.opts.TagPageSize // registries may answer with fewer and a Link to the next page
	repo.Client = r.ociClient(ref.Registry, a, base.Transport)
	return repo, nil
}

// ociClient returns the registry client for host and auth, kept so that the tokens a registry
// hands out are reused across resolutions.
func (r *Resolver) ociClient(host string, a Auth, base http.RoundTripper) *auth.Client {
	key := strings.ToLower(host) + "\x00" + a.Fingerprint()
	r.ociMu.Lock()
	defer r.ociMu.Unlock()
	if c, ok := r.ociClients[key]; ok {
		return c
	}
	if len(r.ociClients) >= 256 {
		clear(r.ociClients)
	}
	c := &auth.Client{
		Client: &http.Client{Transport: retry.NewTransport(base), Timeout: r.opts.Timeout, CheckRedirect: checkRedirect},
		Header: http.Header{"User-Agent": {"helmops"}},
		Cache:  auth.NewCache(),
		Credential: func(_ context.Context, hostport string) (auth.Credential, error) {
			if !strings.EqualFold(hostport, host) { // credentials belong to the chart's registry only
				return auth.EmptyCredential, nil
			}
			if u, p, ok := a.basicFor(hostport); ok {
				return auth.Credential{Username: u, Password: p}, nil
			}
			return auth.EmptyCredential, nil
		},
	}
	r.ociClients[key] = c
	return c
}

// ociError turns a registry error into ours: ErrUnauthorized with the status, NotFoundError for
// an unknown repository; the reference is named, credentials never are.
func ociError(err error, what, repoName string) error {
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: %d %s: check the username and password (helmSecretName or --username): %w", what, resp.StatusCode, http.StatusText(resp.StatusCode), ErrUnauthorized)
		case http.StatusNotFound:
			return &NotFoundError{Object: "repository", Name: repoName}
		}
		return fmt.Errorf("%s: %d %s: %s", what, resp.StatusCode, http.StatusText(resp.StatusCode), redact.String(fmt.Sprint(resp.Errors)))
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return fmt.Errorf("%s: 401 Unauthorized: the registry needs credentials (helmSecretName or --username): %w", what, ErrUnauthorized)
	}
	if errors.Is(err, ErrHostBusy) || errors.Is(err, errTooManyTags) {
		return err
	}
	// Registry clients repeat references with their credentials (user:pass@host) and dial
	// errors name resolved addresses: neither leaves this function.
	return &redactedError{msg: what + ": " + redact.Error(cleanNetError(err, "oci://"+repoName)), err: err}
}

// redactedError shows a redacted message and still unwraps to the original error.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

var errTooManyTags = errors.New("too many tags")

// ociTag is the tag Helm pushes a version under: build metadata's + becomes _.
func ociTag(version string) string { return strings.ReplaceAll(version, "+", "_") }

// resolveOCI resolves an OCI chart: an exact version by resolving its one tag, anything else by
// listing every tag.
func (r *Resolver) resolveOCI(ctx context.Context, ref Ref, a Auth) (*Resolution, error) {
	t, err := r.ociTarget(ref, a)
	if err != nil {
		return nil, err
	}
	return r.resolveTarget(ctx, t, a)
}

// resolveTarget resolves the version of an opened OCI chart repository.
func (r *Resolver) resolveTarget(ctx context.Context, t *ociChart, a Auth) (*Resolution, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	if chartversion.IsStatic(t.version) {
		if res, err := r.resolveStaticOCI(ctx, t); res != nil || err != nil {
			return res, err
		}
		// Not there: list tags to say what is (or that the repository does not exist).
	}
	candidates, err := r.listOCITags(ctx, t, a)
	if err != nil {
		return nil, err
	}
	choice, err := chartversion.Choose(candidates, t.version)
	if err != nil {
		return nil, choiceError(err, t.chart, t.where)
	}
	tag := ociTag(choice.Chosen.Version)
	desc, err := r.resolveOCITag(ctx, t, tag)
	if err != nil {
		return nil, err
	}
	return &Resolution{Kind: KindOCI, Version: choice.Chosen.Version, Digest: desc.Digest.String(), URL: t.where + ":" + tag, Rejected: choice.Rejected, Latest: choice.Latest}, nil
}

// ociChart is an OCI chart repository being resolved.
type ociChart struct {
	repo *remote.Repository
	// name is registry/repository, where is oci://name, chart the last part of the repository.
	name, where, chart string
	// host is the registry's host:port, whose slots requests take.
	host string
	// version is helm.version, or the tag helm.repo names.
	version string
}

// ociTarget opens the repository of ref; a tag in helm.repo is the version, and must agree with
// helm.version.
func (r *Resolver) ociTarget(ref Ref, a Auth) (*ociChart, error) {
	oref, err := parseOCIRef(ref.Repo)
	if err != nil {
		return nil, &FieldError{Field: "helm.repo", Message: err.Error()}
	}
	version := ref.Version
	if oref.Reference != "" {
		if version != "" && version != oref.Reference && ociTag(version) != oref.Reference {
			return nil, &FieldError{Field: "helm.version", Message: fmt.Sprintf("is %q but helm.repo names tag %q: remove one of them", version, oref.Reference)}
		}
		version = oref.Reference
	}
	repo, err := r.ociRepository(oref, a)
	if err != nil {
		return nil, err
	}
	name := oref.Registry + "/" + oref.Repository
	return &ociChart{
		repo: repo, name: name, where: "oci://" + name,
		chart:   oref.Repository[strings.LastIndex(oref.Repository, "/")+1:],
		host:    registryHostPort(oref.Registry, a.PlainHTTP),
		version: version,
	}, nil
}

// resolveStaticOCI resolves an exact version by its tag, with and without a leading v; nil and
// no error when neither tag exists.
func (r *Resolver) resolveStaticOCI(ctx context.Context, t *ociChart) (*Resolution, error) {
	tags := []string{ociTag(t.version)}
	if v, ok := strings.CutPrefix(t.version, "v"); ok {
		tags = append(tags, ociTag(v))
	} else {
		tags = append(tags, "v"+ociTag(t.version))
	}
	for _, tag := range tags {
		desc, err := r.resolveOCITag(ctx, t, tag)
		if err == nil {
			return &Resolution{Kind: KindOCI, Version: strings.ReplaceAll(tag, "_", "+"), Digest: desc.Digest.String(), URL: t.where + ":" + tag}, nil
		}
		if !errors.Is(err, errdef.ErrNotFound) {
			return nil, err
		}
	}
	return nil, nil
}

// resolveOCITag resolves one tag, holding one of the host's slots.
func (r *Resolver) resolveOCITag(ctx context.Context, t *ociChart, tag string) (ocispec.Descriptor, error) {
	hctx, done, err := r.acquireHost(ctx, t.host)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := t.repo.Resolve(hctx, tag)
	if err = done(err); err != nil {
		return ocispec.Descriptor{}, ociError(err, "resolving "+t.where+":"+tag, t.name)
	}
	return desc, nil
}

// listOCITags lists the repository's tags as version candidates, within the tag limits.
// Concurrent resolutions of one repository with the same credentials share one listing.
func (r *Resolver) listOCITags(ctx context.Context, t *ociChart, a Auth) ([]chartversion.Candidate, error) {
	listed, err := r.share(ctx, "oci\x00"+t.name+"\x00"+a.Fingerprint(), t.host, nil, func(ctx context.Context) (any, string, error) {
		var candidates []chartversion.Candidate
		pages := 0
		err := t.repo.Tags(ctx, "", func(tags []string) error {
			pages++
			if pages > r.opts.MaxTagPages || len(candidates)+len(tags) > r.opts.MaxTags {
				return fmt.Errorf("listing the tags of %s: the registry lists more than %d tags or %d pages, the limits of one listing: give an exact version in helm.version, or ask the operator to raise the tag limits: %w",
					t.where, r.opts.MaxTags, r.opts.MaxTagPages, errTooManyTags)
			}
			for _, tag := range tags {
				candidates = append(candidates, chartversion.Candidate{Version: strings.ReplaceAll(tag, "_", "+")})
			}
			return nil
		})
		return candidates, "", err
	})
	if err != nil {
		return nil, ociError(err, "listing the tags of "+t.where, t.name)
	}
	candidates := listed.([]chartversion.Candidate)
	if len(candidates) == 0 {
		return nil, &NotFoundError{Object: "repository", Name: t.name}
	}
	return candidates, nil
}

// fetchOCI pulls the chart layer of the pinned manifest, or of the tag ref resolves to, opening
// the repository once.
func (r *Resolver) fetchOCI(ctx context.Context, ref Ref, a Auth, maxBytes int64) ([]byte, *Resolution, error) {
	t, err := r.ociTarget(ref, a)
	if err != nil {
		return nil, nil, err
	}
	res, err := r.pinnedOrResolved(ctx, t, ref.Digest, a)
	if err != nil {
		return nil, nil, err
	}
	hctx, done, err := r.acquireHost(ctx, t.host)
	if err != nil {
		return nil, nil, err
	}
	hctx, cancel := context.WithTimeout(hctx, r.opts.Timeout)
	defer cancel()
	data, err := fetchOCILayer(hctx, t.repo, res, t.name, maxBytes)
	if err = done(err); err != nil {
		return nil, nil, err
	}
	return data, res, nil
}

// pinnedOrResolved is the manifest to pull: the pinned one (a digest) for the exact version,
// or, with no pin, what the tag resolves to now.
func (r *Resolver) pinnedOrResolved(ctx context.Context, t *ociChart, pin string, a Auth) (*Resolution, error) {
	if pin == "" {
		return r.resolveTarget(ctx, t, a)
	}
	if _, err := digest.Parse(pin); err != nil {
		return nil, fmt.Errorf("the pinned manifest %q of %s is not a digest (spec.helmChartOptions.helmOpChartDigest, written by the controller): %w", pin, t.where, err)
	}
	return &Resolution{Kind: KindOCI, Version: t.version, Digest: pin, URL: t.where + ":" + ociTag(t.version)}, nil
}

// fetchOCILayer pulls the chart layer of the manifest res names.
func fetchOCILayer(ctx context.Context, repo *remote.Repository, res *Resolution, repoName string, maxBytes int64) ([]byte, error) {
	manifest, err := fetchOCIManifest(ctx, repo, res, repoName)
	if err != nil {
		return nil, err
	}
	layer, err := chartLayer(manifest, res.URL, maxBytes)
	if err != nil {
		return nil, err
	}
	blob, err := repo.Fetch(ctx, *layer)
	if err != nil {
		return nil, ociError(err, "downloading the chart of "+res.URL, repoName)
	}
	defer blob.Close()
	data, err := content.ReadAll(io.LimitReader(blob, maxBytes+1), *layer)
	if err != nil {
		return nil, fmt.Errorf("downloading the chart of %s: %w", res.URL, err)
	}
	return data, nil
}

// fetchOCIManifest reads the manifest res resolved to (by digest when there is one), up to 4 MiB.
func fetchOCIManifest(ctx context.Context, repo *remote.Repository, res *Resolution, repoName string) (*ocispec.Manifest, error) {
	ref := res.URL[strings.LastIndex(res.URL, ":")+1:]
	if res.Digest != "" {
		// The manifest the tag resolved to, not whatever the tag names by now.
		ref = res.Digest
	}
	mdesc, rc, err := repo.FetchReference(ctx, ref)
	if err != nil {
		return nil, ociError(err, "fetching the manifest of "+res.URL, repoName)
	}
	if mdesc.Size > 4<<20 {
		_ = rc.Close()
		return nil, fmt.Errorf("the manifest of %s is %d bytes: not a chart", res.URL, mdesc.Size)
	}
	raw, err := content.ReadAll(rc, mdesc)
	_ = rc.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", res.URL, err)
	}
	var manifest ocispec.Manifest
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", res.URL, err)
	}
	return &manifest, nil
}

// chartLayer is the manifest's first Helm chart layer, refused when it is larger than maxBytes.
func chartLayer(manifest *ocispec.Manifest, url string, maxBytes int64) (*ocispec.Descriptor, error) {
	for i := range manifest.Layers {
		layer := &manifest.Layers[i]
		if layer.MediaType != helmChartLayer {
			continue
		}
		if layer.Size > maxBytes {
			return nil, fmt.Errorf("chart archive %s is %d bytes, more than the limit of %d bytes", url, layer.Size, maxBytes)
		}
		return layer, nil
	}
	return nil, fmt.Errorf("%s is not a Helm chart: its manifest has no %s layer", url, helmChartLayer)
}

// registryHostPort is the host:port a registry is reached at.
func registryHostPort(registry string, plainHTTP bool) string {
	if strings.Contains(registry, ":") && !strings.HasSuffix(registry, "]") {
		return registry
	}
	if plainHTTP {
		return registry + ":80"
	}
	return registry + ":443"
}

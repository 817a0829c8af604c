// Package notify serves the controller's notification endpoint: registries and CI pipelines tell
// helmops that a chart version was published, and every HelmOp that follows a version constraint
// in that repository is reconciled at once instead of at its next poll.
//
// A notification only ever selects HelmOps: it names a repository, and the HelmOps that name the
// same repository are asked to reconcile (through the fleet.cattle.io/reconcile-requested-at
// annotation, as `helmops reconcile` does). The controller then fetches what those HelmOps name,
// with their own credentials; nothing in a notification is ever fetched.
package notify

import (
	"net/url"
	"strings"

	"oras.land/oras-go/v2/registry"
)

// dockerHubHosts are the names Docker Hub's registry goes by; they all make the same key.
var dockerHubHosts = map[string]bool{"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true, "registry.hub.docker.com": true}

// Key is the form in which a repository is matched between HelmOps and notifications:
// "oci://HOST[:PORT]/REPOSITORY" for a chart in an OCI registry (the chart's own repository, no
// tag), "helm://HOST[:PORT]/PATH" for a Helm HTTP(S) repository. Host names are lower-cased,
// default ports, credentials, queries, fragments and trailing slashes dropped, and the scheme of
// a Helm repository ignored, so that the spellings of one repository share a key. ok is false
// for anything else.
func Key(repo string) (key string, ok bool) {
	repo = strings.TrimSpace(repo)
	if len(repo) > 2048 {
		return "", false
	}
	if len(repo) >= 6 && strings.EqualFold(repo[:6], "oci://") {
		return ociKey(repo[6:])
	}
	u, err := url.Parse(repo)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); p == "80" && scheme == "http" || p == "443" && scheme == "https" {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return "helm://" + host + strings.TrimRight(u.EscapedPath(), "/"), true
}

// ociKey reads registry/repository[:tag|@digest] into an OCI key.
func ociKey(ref string) (string, bool) {
	ref = strings.TrimRight(ref, "/")
	r, err := registry.ParseReference(ref)
	if err != nil {
		return "", false
	}
	host := strings.ToLower(r.Registry)
	host = strings.TrimSuffix(host, ":443")
	if dockerHubHosts[host] {
		host = "docker.io"
	}
	return "oci://" + host + "/" + r.Repository, true
}

package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Sender is who sent a notification, by the shape of its body and headers.
type Sender string

const (
	SenderDistribution Sender = "distribution"
	SenderHarbor       Sender = "harbor"
	SenderDockerHub    Sender = "dockerhub"
	SenderGitHub       Sender = "github"
	SenderGeneric      Sender = "generic"
)

// maxTargets bounds the repositories one notification may name.
const maxTargets = 32

// Target is one repository a notification says changed.
type Target struct {
	// Key is the repository's Key.
	Key string
	// Chart narrows a Helm repository to the HelmOps of one chart; empty means all of them.
	Chart string
}

// Notification is a parsed request body.
type Notification struct {
	Sender Sender
	// Targets are the repositories to revalidate; empty when the notification is about something
	// else (a pull, a deletion, a blob upload, a ping).
	Targets []Target
}

// errInvalid is a body that is not a notification helmops understands.
var errInvalid = errors.New("invalid notification")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

// envelope holds every field helmops reads from any sender; the sender is told apart by which
// of them are present. Every value is untrusted: it is only turned into repository keys.
type envelope struct {
	// Distribution registry.
	Events []distributionEvent `json:"events"`
	// Harbor.
	Type      string `json:"type"`
	EventData *struct {
		Resources []struct {
			Tag         string `json:"tag"`
			ResourceURL string `json:"resource_url"`
		} `json:"resources"`
		Repository struct {
			RepoFullName string `json:"repo_full_name"`
		} `json:"repository"`
	} `json:"event_data"`
	// Docker Hub.
	PushData *struct {
		Tag string `json:"tag"`
	} `json:"push_data"`
	Repository *struct {
		RepoName string `json:"repo_name"`
	} `json:"repository"`
	// Generic.
	Repo  *string `json:"repo"`
	Chart string  `json:"chart"`
}

type distributionEvent struct {
	Action string `json:"action"`
	Target struct {
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
		URL        string `json:"url"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"`
	} `json:"request"`
}

type githubEvent struct {
	Action          string         `json:"action"`
	RegistryPackage *githubPackage `json:"registry_package"`
	Package         *githubPackage `json:"package"`
}

type githubPackage struct {
	Name           string `json:"name"`
	Namespace      string `json:"namespace"`
	PackageType    string `json:"package_type"`
	PackageVersion *struct {
		PackageURL string `json:"package_url"`
	} `json:"package_version"`
	Registry *struct {
		URL string `json:"url"`
	} `json:"registry"`
}

// Parse reads a notification of any supported sender. It returns an error wrapping errInvalid
// for a body that is none of them.
func Parse(header http.Header, body []byte) (*Notification, error) {
	if ev := header.Get("X-GitHub-Event"); ev != "" {
		return parseGitHub(ev, body)
	}
	var e envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&e); err != nil {
		return nil, invalid("the body is not JSON: %v", err)
	}
	n := &Notification{}
	switch {
	case e.Events != nil:
		n.Sender = SenderDistribution
		n.addDistribution(e.Events)
	case e.Type != "":
		n.Sender = SenderHarbor
		n.addHarbor(&e)
	case e.PushData != nil && e.Repository != nil:
		n.Sender = SenderDockerHub
		// The callback_url of the payload is never called.
		n.add(ociTarget("docker.io", e.Repository.RepoName))
	case e.Repo != nil:
		n.Sender = SenderGeneric
		t, err := genericTarget(*e.Repo, e.Chart)
		if err != nil {
			return nil, err
		}
		n.add(t, true)
	default:
		return nil, invalid(`no known sender: expected a Distribution "events" envelope, a Harbor event, a Docker Hub push, a GitHub package event or {"repo": …}`)
	}
	if len(n.Targets) > maxTargets {
		return nil, invalid("the notification names more than %d repositories", maxTargets)
	}
	return n, nil
}

// addDistribution adds the repositories of a Distribution registry's pushes of a manifest by
// tag, under the host of the request and the host of the target's URL.
func (n *Notification) addDistribution(events []distributionEvent) {
	for _, ev := range events {
		// Pushes of a manifest by tag only: blob uploads carry no tag, pulls and deletions
		// publish nothing.
		if ev.Action != "push" || ev.Target.Tag == "" || ev.Target.Repository == "" {
			continue
		}
		hosts := []string{ev.Request.Host}
		if u, err := url.Parse(ev.Target.URL); err == nil && u.Host != "" {
			hosts = append(hosts, u.Host)
		}
		for _, h := range hosts {
			n.add(ociTarget(h, ev.Target.Repository))
		}
	}
}

// addHarbor adds the repository of a Harbor artifact push, under the host of each resource.
func (n *Notification) addHarbor(e *envelope) {
	if e.Type != "PUSH_ARTIFACT" || e.EventData == nil {
		return
	}
	for _, r := range e.EventData.Resources {
		host, _, _ := strings.Cut(r.ResourceURL, "/")
		n.add(ociTarget(host, e.EventData.Repository.RepoFullName))
	}
}

// genericTarget reads {"repo": …, "chart": …}: a Helm repository URL and optionally one of its
// charts, or an oci:// reference (a chart there is appended to it).
func genericTarget(repo, chart string) (Target, error) {
	repo, chart = strings.TrimSpace(repo), strings.TrimSpace(chart)
	if len(repo) >= 6 && strings.EqualFold(repo[:6], "oci://") {
		if chart != "" {
			repo = strings.TrimRight(repo, "/") + "/" + chart
		}
		chart = ""
	}
	key, ok := Key(repo)
	if !ok {
		return Target{}, invalid(`"repo" must be an http(s):// Helm repository URL or an oci:// chart reference`)
	}
	if strings.ContainsAny(chart, "/?#") {
		return Target{}, invalid(`"chart" %q is not a chart name`, chart)
	}
	return Target{Key: key, Chart: chart}, nil
}

func parseGitHub(event string, body []byte) (*Notification, error) {
	n := &Notification{Sender: SenderGitHub}
	if event == "ping" {
		return n, nil
	}
	if event != "registry_package" && event != "package" {
		return n, nil // subscribed to more than packages: nothing to do
	}
	var e githubEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, invalid("the body is not JSON: %v", err)
	}
	p := e.RegistryPackage
	if p == nil {
		p = e.Package
	}
	if p == nil || e.Action != "published" && e.Action != "updated" || !strings.EqualFold(p.PackageType, "container") {
		return n, nil
	}
	// package_url is ghcr.io/OWNER/NAME:TAG; without it, the package's namespace and name on
	// the registry's host.
	if p.PackageVersion != nil && p.PackageVersion.PackageURL != "" {
		n.add(keyTarget(Key("oci://" + strings.TrimPrefix(strings.TrimPrefix(p.PackageVersion.PackageURL, "https://"), "oci://"))))
	}
	host := "ghcr.io"
	if p.Registry != nil {
		if u, err := url.Parse(p.Registry.URL); err == nil && u.Host != "" {
			host = u.Host
		}
	}
	if p.Namespace != "" && p.Name != "" {
		n.add(ociTarget(host, strings.ToLower(p.Namespace)+"/"+p.Name))
	}
	if len(n.Targets) > maxTargets {
		return nil, invalid("the notification names more than %d repositories", maxTargets)
	}
	return n, nil
}

// ociTarget is the key of repository on host; ok is false when they make no reference.
func ociTarget(host, repository string) (Target, bool) {
	host, repository = strings.TrimSpace(host), strings.Trim(strings.TrimSpace(repository), "/")
	if host == "" || repository == "" || strings.ContainsAny(host, "/@?#") {
		return Target{}, false
	}
	key, ok := Key("oci://" + host + "/" + repository)
	return Target{Key: key}, ok
}

func keyTarget(key string, ok bool) (Target, bool) { return Target{Key: key}, ok }

// add appends a target once.
func (n *Notification) add(t Target, ok bool) {
	if !ok || len(n.Targets) > maxTargets {
		return
	}
	for _, have := range n.Targets {
		if have == t {
			return
		}
	}
	n.Targets = append(n.Targets, t)
}

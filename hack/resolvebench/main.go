// Command resolvebench helps measure whole processes resolving a chart version from a large Helm
// repository index (hack/measure-rss.sh drives it):
//
//	resolvebench serve [-addr 127.0.0.1:0]   serve a generated index at /index.yaml, print the URL
//	resolvebench helm -repo URL -chart C -version V
//	                                          resolve as Helm's SDK does: download the index with its
//	                                          HTTP getter into a file, repo.LoadIndexFile, IndexFile.Get
//	resolvebench controlplane -dir D          run a kube-apiserver with the helmops CRDs and write
//	                                          its admin kubeconfig to D/kubeconfig, until killed
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/getter"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/helmops/helmops/internal/chartsource/helmindex"
	"github.com/helmops/helmops/internal/localenv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: resolvebench serve|helm|controlplane [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "helm":
		err = helmResolve(os.Args[2:])
	case "controlplane":
		err = controlPlane(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// serve generates the 150 charts × 120 versions index (about 23 MB, full metadata, written by
// Helm's index code) and serves it with an ETag and Last-Modified, as a static file server does.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	fs.Parse(args)
	index, err := helmindex.Generate(helmindex.GenerateOptions{Seed: 1})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	modified := time.Now()
	fmt.Printf("http://%s %d\n", l.Addr(), len(index))
	return http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/index.yaml" {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("ETag", `"generated-1"`)
		http.ServeContent(w, req, "index.yaml", modified, bytes.NewReader(index))
	}))
}

// helmResolve does what `helm repo add` + `helm install --version` do to pick a version.
func helmResolve(args []string) error {
	fs := flag.NewFlagSet("helm", flag.ExitOnError)
	repoURL := fs.String("repo", "", "repository URL")
	chart := fs.String("chart", "", "chart name")
	version := fs.String("version", "", "version constraint")
	fs.Parse(args)
	slog.SetDefault(slog.New(slog.DiscardHandler))
	cache, err := os.MkdirTemp("", "resolvebench-helm-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	// Download as Helm's HTTP getter does, into the repository cache, then load it as every
	// Helm command that reads a repository does.
	g, err := getter.All(cli.New()).ByScheme("http")
	if err != nil {
		return err
	}
	body, err := g.Get(strings.TrimSuffix(*repoURL, "/") + "/index.yaml")
	if err != nil {
		return err
	}
	path := filepath.Join(cache, "bench-index.yaml")
	if err := os.WriteFile(path, body.Bytes(), 0o644); err != nil {
		return err
	}
	body = nil
	idx, err := repo.LoadIndexFile(path)
	if err != nil {
		return err
	}
	cv, err := idx.Get(*chart, *version)
	if err != nil {
		return err
	}
	fmt.Printf("Version: %s\nDigest: %s\nURL: %s\n", cv.Version, cv.Digest, cv.URLs[0])
	return nil
}

// controlPlane runs a control plane for an idle `helmops controller` to connect to.
func controlPlane(args []string) error {
	fs := flag.NewFlagSet("controlplane", flag.ExitOnError)
	dir := fs.String("dir", "", "folder for the kubeconfig and logs")
	fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	cp, err := localenv.Start(ctx, localenv.Options{Name: "bench", Dir: abs, NoControllerManager: true})
	if err != nil {
		return err
	}
	defer cp.Stop()
	fmt.Println(cp.KubeconfigPath)
	<-ctx.Done()
	return nil
}

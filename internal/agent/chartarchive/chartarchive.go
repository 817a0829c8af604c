// Package chartarchive loads downloaded chart archives safely and keeps them in a local cache.
//
// Archives come from repositories the agent does not control, so Load checks every entry before
// Helm sees it: the number of files, the size of each file and of all of them decompressed, and
// that no path escapes the chart folder (no absolute paths, no "..", no links).
package chartarchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// Limits bound what an archive may contain. Zero fields take the defaults.
type Limits struct {
	// MaxArchiveBytes is the largest compressed archive accepted (default 20 MiB).
	MaxArchiveBytes int64
	// MaxDecompressedBytes is the largest total size of all files (default 100 MiB).
	MaxDecompressedBytes int64
	// MaxFileBytes is the largest single file (default 10 MiB).
	MaxFileBytes int64
	// MaxFiles is the largest number of files (default 5000).
	MaxFiles int
	// MaxSubcharts is the largest number of subchart archives (charts/*.tgz), at every depth
	// (default 200).
	MaxSubcharts int
}

// maxDepth bounds how deep subchart archives may nest.
const maxDepth = 8

// Defaulted returns the limits with defaults filled in.
func (l Limits) Defaulted() Limits {
	if l.MaxArchiveBytes <= 0 {
		l.MaxArchiveBytes = 20 << 20
	}
	if l.MaxDecompressedBytes <= 0 {
		l.MaxDecompressedBytes = 100 << 20
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = 10 << 20
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 5000
	}
	if l.MaxSubcharts <= 0 {
		l.MaxSubcharts = 200
	}
	return l
}

// InvalidArchiveError says why an archive was refused.
type InvalidArchiveError struct{ Reason string }

func (e *InvalidArchiveError) Error() string { return "invalid chart archive: " + e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidArchiveError{Reason: fmt.Sprintf(format, args...)}
}

// Load checks an archive against the limits and loads the chart.
func Load(data []byte, limits Limits) (*chart.Chart, error) {
	l := limits.Defaulted()
	if int64(len(data)) > l.MaxArchiveBytes {
		return nil, invalid("archive is %d bytes, more than the limit of %d", len(data), l.MaxArchiveBytes)
	}
	files, err := readFiles(bytes.NewReader(data), l, &budget{}, 0)
	if err != nil {
		return nil, err
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, invalid("%v", err)
	}
	return ch, nil
}

// budget is what a chart and all its subchart archives have used of the limits together: Helm
// decompresses charts/*.tgz again when it loads the chart, so they count as if unpacked.
type budget struct {
	files, subcharts int
	total            int64
}

// readFiles reads the files of one chart archive; subchart archives in it (charts/*.tgz) are
// read through too, against the same budget, and kept as files for Helm's loader.
func readFiles(r io.Reader, l Limits, used *budget, depth int) ([]*archive.BufferedFile, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, invalid("not a gzip archive: %v", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	var (
		files []*archive.BufferedFile
		root  string
	)
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalid("reading tar: %v", err)
		}
		name, err := entryName(hd, &root)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue // a folder or a PAX header
		}
		b, err := used.read(tr, hd.Size, name, l)
		if err != nil {
			return nil, err
		}
		if dir, file := path.Split(name); path.Base(dir) == "charts" && (strings.HasSuffix(file, ".tgz") || strings.HasSuffix(file, ".tar.gz")) {
			if err := readSubchart(b, name, l, used, depth); err != nil {
				return nil, err
			}
		}
		files = append(files, &archive.BufferedFile{Name: name, ModTime: hd.ModTime, Data: bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})})
	}
	if len(files) == 0 {
		return nil, invalid("no files")
	}
	return files, nil
}

// entryName is the path of a regular file's entry inside the chart folder, "" for an entry that
// is skipped (a folder, a PAX header). Links, other types, absolute paths, paths with ".." and
// paths outside the chart folder (root, the first entry's) are refused.
func entryName(hd *tar.Header, root *string) (string, error) {
	switch hd.Typeflag {
	case tar.TypeDir, tar.TypeXGlobalHeader, tar.TypeXHeader:
		return "", nil
	case tar.TypeReg:
	case tar.TypeSymlink, tar.TypeLink:
		return "", invalid("entry %q is a link; links are not allowed in charts", hd.Name)
	default:
		return "", invalid("entry %q has unsupported type %q", hd.Name, string(hd.Typeflag))
	}
	name := strings.ReplaceAll(hd.Name, "\\", "/")
	if path.IsAbs(name) || (len(name) > 1 && name[1] == ':') {
		return "", invalid("entry %q has an absolute path", hd.Name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", invalid("entry %q escapes the chart folder", hd.Name)
		}
	}
	top, rest, ok := strings.Cut(path.Clean(name), "/")
	if !ok || rest == "" {
		return "", invalid("entry %q is outside the chart folder", hd.Name)
	}
	if *root == "" {
		*root = top
	} else if top != *root {
		return "", invalid("entry %q is outside the chart folder %q", hd.Name, *root)
	}
	return rest, nil
}

// read reads the file name, size bytes as its header says, from tr within the limits: the
// number of files, the size of one file and the decompressed total. The header is never
// trusted: at most one byte past the limits is read.
func (used *budget) read(tr io.Reader, size int64, name string, l Limits) ([]byte, error) {
	if used.files >= l.MaxFiles {
		return nil, invalid("more than %d files in the chart and its subcharts", l.MaxFiles)
	}
	used.files++
	if size > l.MaxFileBytes {
		return nil, invalid("file %q is %d bytes, more than the limit of %d", name, size, l.MaxFileBytes)
	}
	limit := min(l.MaxFileBytes, l.MaxDecompressedBytes-used.total) + 1
	b, err := io.ReadAll(io.LimitReader(tr, limit))
	if err != nil {
		return nil, invalid("reading %q: %v", name, err)
	}
	if int64(len(b)) > l.MaxFileBytes {
		return nil, invalid("file %q is more than the limit of %d bytes", name, l.MaxFileBytes)
	}
	used.total += int64(len(b))
	if used.total > l.MaxDecompressedBytes {
		return nil, invalid("decompressed chart is more than the limit of %d bytes (subcharts included)", l.MaxDecompressedBytes)
	}
	return b, nil
}

// readSubchart reads a subchart archive (charts/*.tgz) through, against the same budget, to
// refuse what the chart itself would be refused for.
func readSubchart(b []byte, name string, l Limits, used *budget, depth int) error {
	if used.subcharts >= l.MaxSubcharts {
		return invalid("more than %d subchart archives (charts/*.tgz) in the chart and its subcharts", l.MaxSubcharts)
	}
	used.subcharts++
	if depth >= maxDepth {
		return invalid("subchart %q nests more than %d levels deep", name, maxDepth)
	}
	if _, err := readFiles(bytes.NewReader(b), l, used, depth+1); err != nil {
		return invalid("subchart %s: %s", name, strings.TrimPrefix(err.Error(), "invalid chart archive: "))
	}
	return nil
}

// Cache keeps archives on disk under a key. Keys are hashed into file names, so any string
// (a digest, or a reference with a credential fingerprint) is a valid key.
type Cache struct {
	dir string
	mu  sync.Mutex
}

// NewCache returns a cache in dir, creating it.
func NewCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the chart cache folder: %w", err)
	}
	return &Cache{dir: dir}, nil
}

func (c *Cache) file(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:])+".tgz")
}

// Get returns the archive stored under key.
func (c *Cache) Get(key string) ([]byte, bool) {
	b, err := os.ReadFile(c.file(key))
	if err != nil {
		return nil, false
	}
	return b, true
}

// Put stores an archive under key (atomically: readers see the whole file or none).
func (c *Cache) Put(key string, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), c.file(key))
}

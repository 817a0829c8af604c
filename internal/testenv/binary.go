package testenv

import (
	"fmt"
	"os/exec"
	"path/filepath"
)

// BuildHelmops builds the helmops binary into dir, as tests that drive the shipped process
// need it, and returns its path.
func BuildHelmops(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "helmops")
	build := exec.Command("go", "build", "-o", bin, "./cmd/helmops")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building helmops: %w\n%s", err, out)
	}
	return bin, nil
}

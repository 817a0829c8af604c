package cli

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestVersionCommand(t *testing.T) {
	g := NewWithT(t)

	var out bytes.Buffer
	cmd := NewRootCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"version"})
	g.Expect(cmd.Execute()).To(Succeed())
	g.Expect(out.String()).To(HavePrefix("helmops "))
	g.Expect(out.String()).To(ContainSubstring(runtime.Version()))

	out.Reset()
	cmd = NewRootCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"version", "-o", "json"})
	g.Expect(cmd.Execute()).To(Succeed())
	var info map[string]string
	g.Expect(json.Unmarshal(out.Bytes(), &info)).To(Succeed())
	g.Expect(info).To(HaveKeyWithValue("goVersion", runtime.Version()))
	g.Expect(info).To(HaveKey("commit"))

	cmd = NewRootCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"version", "-o", "xml"})
	err := cmd.Execute()
	g.Expect(err).To(HaveOccurred())
	g.Expect(strings.Contains(err.Error(), "--output")).To(BeTrue())
}

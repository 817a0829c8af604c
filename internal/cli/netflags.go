package cli

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/helmops/helmops/internal/chartsource"
)

// networkFlags are the address guards of every fetch the controller or an agent makes for a
// HelmOp: the URLs are tenant input.
type networkFlags struct {
	allowLoopback, allowPrivate bool
	deny                        []string
}

func (n *networkFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&n.allowLoopback, "allow-loopback", false, "allow chart fetches to loopback addresses (127.0.0.0/8, ::1); helmops dev turns it on")
	fl.BoolVar(&n.allowPrivate, "allow-private-networks", false, "allow chart fetches to private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), e.g. repositories inside the cluster")
	fl.StringSliceVar(&n.deny, "deny-address-ranges", nil, "more CIDR ranges chart fetches never connect to, redirects included (link-local and cloud metadata addresses are always denied)")
}

func (n *networkFlags) policy() (chartsource.NetworkPolicy, error) {
	deny, err := chartsource.ParseCIDRs(n.deny)
	if err != nil {
		return chartsource.NetworkPolicy{}, fmt.Errorf("--deny-address-ranges: %w", err)
	}
	return chartsource.NetworkPolicy{AllowLoopback: n.allowLoopback, AllowPrivate: n.allowPrivate, Deny: deny}, nil
}

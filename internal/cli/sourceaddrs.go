package cli

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/sseharness/sseharness/runner"
)

// resolveSourceAddrs turns --source-addrs into the run's round-robin of source
// addresses. Without the flag, on a loopback target, it picks enough loopback
// addresses itself when streams need more ports than one source address has, and
// returns a note saying so; otherwise nil (the system's choice).
func resolveSourceAddrs(flag, target string, streams int) (*runner.SourceAddrs, string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", fmt.Errorf("target %q: %v", target, err)
	}
	host := u.Hostname()
	if flag != "" {
		addrs, err := runner.ParseSourceAddrs(flag)
		if err != nil {
			return nil, "", fmt.Errorf("--source-addrs: %v", err)
		}
		srcs, err := runner.NewSourceAddrs(addrs)
		if err != nil {
			return nil, "", fmt.Errorf("--source-addrs: %v", err)
		}
		if err := srcs.CheckTarget(host); err != nil {
			return nil, "", fmt.Errorf("--source-addrs: %v", err)
		}
		return srcs, "", nil
	}
	budget, berr := runner.LocalPortBudget()
	addrs, err := runner.AutoSourceAddrs(host, streams, budget)
	if err != nil {
		return nil, "", fmt.Errorf("%v (or pass --source-addrs)", err)
	}
	if addrs == nil {
		return nil, "", nil
	}
	srcs, err := runner.NewSourceAddrs(addrs)
	if err != nil {
		return nil, "", err
	}
	note := fmt.Sprintf("%d streams need more than the %d ports one source address has towards %s: spreading their connections over %d loopback addresses %s (--source-addrs to choose)",
		streams, budget.PerAddr(), host, len(addrs), sourceAddrsText(srcs))
	if berr != nil {
		note += "; port range assumed: " + berr.Error()
	}
	return srcs, note, nil
}

// sourceAddrsText writes the addresses compactly: "a-b" when they are consecutive.
func sourceAddrsText(s *runner.SourceAddrs) string {
	addrs := s.Addrs()
	consecutive := true
	for i := 1; i < len(addrs); i++ {
		if addrs[i] != addrs[i-1].Next() {
			consecutive = false
			break
		}
	}
	if len(addrs) > 2 && consecutive {
		return addrs[0].String() + "-" + addrs[len(addrs)-1].String()
	}
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

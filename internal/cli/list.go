package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/sseharness/sseharness/scenarios"
)

func runList(_ context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "list", "[-v]", `
Lists every scenario 'sseharness run' knows, with a line on what a pass proves and the
reference server's fault modes it is proved to catch. With -v, also each check and its
default threshold (against an external target; in brackets, against the embedded server).`)
	verbose := fs.Bool("v", false, "also list each scenario's checks and default thresholds")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "list", "unexpected argument %q", fs.Arg(0))
	}
	for _, s := range scenarios.All() {
		fmt.Fprintf(env.Stdout, "%-22s %s", s.Name, s.Proves)
		if len(s.Catches) > 0 {
			fmt.Fprintf(env.Stdout, " [catches: %s]", strings.Join(s.Catches, ", "))
		}
		fmt.Fprintln(env.Stdout)
		if *verbose {
			for _, c := range s.Checks {
				thr := c.Default
				if c.Embedded != "" {
					thr += " [" + c.Embedded + "]"
				}
				fmt.Fprintf(env.Stdout, "    %-28s %-12s %s\n", c.Name, thr, c.Means)
			}
		}
	}
	return ExitOK
}

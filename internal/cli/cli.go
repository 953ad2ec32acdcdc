// Package cli implements sseharness's subcommands: each one parses its own FlagSet into a
// config struct, validates it and hands it to the package that does the work. Nothing here
// holds global state; Main is callable from tests with any Env.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Exit codes shared by every subcommand.
const (
	ExitOK      = 0 // success: every check passed
	ExitFailed  = 1 // checks or thresholds failed
	ExitUsage   = 2 // usage or configuration error
	ExitHarness = 3 // target unreachable or harness error
)

// Env is what a subcommand may touch of the outside world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads an environment variable (os.Getenv in production).
	Getenv func(string) string
	// StdoutIsTerminal enables live progress lines.
	StdoutIsTerminal bool
	// StderrIsTerminal enables live progress lines written to stderr.
	StderrIsTerminal bool
}

// StdEnv is the process's own environment.
func StdEnv() *Env {
	return &Env{
		Stdin:            os.Stdin,
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		Getenv:           os.Getenv,
		StdoutIsTerminal: term.IsTerminal(int(os.Stdout.Fd())),
		StderrIsTerminal: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) int
}

// commands is the subcommand table, in the order `sseharness help` lists them.
func commands() []command {
	return []command{
		{"run", "run scenarios against a target (default: the embedded reference server) and judge them", runRun},
		{"list", "list the scenarios and what each one proves", runList},
		{"serve", "run the reference SSE server (the target known to be right, or with --fault, known to be wrong)", runServe},
		{"proxy", "run a reverse proxy that buffers like nginx's proxy_buffering (for the proxy-buffering scenario)", runProxy},
		{"parse", "parse a captured event stream into one JSON object per event (spec-exact)", runParse},
		{"conform", "check a live SSE endpoint against the WHATWG spec, rule by rule", runConform},
		{"report", "re-render a saved result (table, markdown, junit, html), or merge shard results", runReport},
		{"compare", "compare two results and fail on regressions (a CI gate)", runCompare},
	}
}

// Main runs one sseharness invocation and returns its exit code.
func Main(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 {
		usage(env.Stderr)
		return ExitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return Main(ctx, []string{args[1], "-h"}, env)
		}
		usage(env.Stdout)
		return ExitOK
	case "version", "--version", "-version":
		fmt.Fprintln(env.Stdout, "sseharness", Version())
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.Stderr, "sseharness: unknown command %q; run 'sseharness help' for the list\n", name)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `sseharness: load-testing and conformance harness for Server-Sent Events services

Usage: sseharness COMMAND [flags] [args]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `  help      show this list, or 'help COMMAND' for a command's flags
  version   print the harness version

Exit codes: 0 pass, 1 checks or thresholds failed, 2 usage or configuration error,
3 target unreachable or harness error.
Run 'sseharness COMMAND -h' for a command's flags and their defaults.
`)
}

// newFlagSet returns a FlagSet that reports errors instead of exiting, with a usage text
// made of the synopsis, a description and every flag with its default.
func newFlagSet(env *Env, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: sseharness %s %s\n\n%s\n\nFlags (-flag and --flag are the same):\n", name, synopsis, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs. It returns ok=false with the exit code to return when
// parsing ended the command: 0 after -h (the usage text is printed), 2 after a bad flag
// (one line saying what is wrong, and where to read more).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	out := fs.Output()
	fs.SetOutput(io.Discard) // the flag package would print the whole usage on any error
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err == nil {
		return 0, true
	}
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return ExitOK, false
	}
	fmt.Fprintf(out, "sseharness %s: %v\nRun 'sseharness %s -h' for usage.\n", fs.Name(), err, fs.Name())
	return ExitUsage, false
}

// usageError prints one clear line about a bad invocation and returns ExitUsage.
func usageError(env *Env, cmd string, format string, args ...any) int {
	fmt.Fprintf(env.Stderr, "sseharness %s: %s\n", cmd, fmt.Sprintf(format, args...))
	fmt.Fprintf(env.Stderr, "Run 'sseharness %s -h' for usage.\n", cmd)
	return ExitUsage
}

// harnessError prints one line about a failure of the target or the harness and returns
// ExitHarness.
func harnessError(env *Env, cmd string, err error) int {
	fmt.Fprintf(env.Stderr, "sseharness %s: %v\n", cmd, err)
	return ExitHarness
}

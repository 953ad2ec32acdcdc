package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/sseharness/sseharness/report"
)

// runReport runs `sseharness report`: it re-renders a saved result with no network, or
// with `merge` combines shard results into one.
func runReport(ctx context.Context, env *Env, args []string) int {
	if len(args) > 0 && args[0] == "merge" {
		return runReportMerge(ctx, env, args[1:])
	}
	fs := newFlagSet(env, "report", "FILE.json [--format FORMAT] [--out FILE]\n       sseharness report merge OUT.json SHARD.json...", `
Re-renders a result file written by 'sseharness run --out' (or 'conform --out'), offline:
nothing is dialled. Formats: table (terminal), markdown (job summaries), junit (CI test
pages: a testsuite per scenario, a testcase per check), html (one self-contained page
with charts, no external resource), json (the result file itself).

'sseharness report merge OUT.json SHARD.json...' combines the results of the shards of
one distributed run ('run --shard I/N'): counts add, latency distributions merge from
their histograms, server figures are taken once, checks with a metric rule are
re-evaluated and the others take the worst shard's verdict. Every shard 0..N-1 must be
given exactly once.

A result file is checked as it is read: every verdict and level must be one this harness
knows, and a file over --max-file-size is refused without being read.

Exit status: 0 when the result passed, 1 when a check failed, 3 when a scenario could not
run (as 'run' exits for the same result), 2 for a missing, malformed or too large file or
bad flags, 3 when the output cannot be written.`)
	format := fs.String("format", "table", "output `format`: "+strings.Join(report.Formats(), ", "))
	maxSize := maxFileSizeFlag(fs)
	out := fs.String("out", "", "write to this `file` instead of standard output")
	fs.StringVar(out, "o", "", "shorthand for --out")
	files, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(files) != 1 {
		return usageError(env, "report", "want exactly one result FILE.json, got %d arguments", len(files))
	}
	render, err := report.RendererFor(*format)
	if err != nil {
		return usageError(env, "report", "--format: %v", err)
	}
	res, err := loadResult(files[0], maxSize)
	if err != nil {
		return fileError(env, "report", err)
	}
	if err := writeOutput(env, *out, func(w *strings.Builder) error { return render(w, res) }); err != nil {
		return harnessError(env, "report", err)
	}
	return exitFor(res)
}

func runReportMerge(_ context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "report merge", "OUT.json SHARD.json...", `
Combines the result files of the shards of one distributed run into OUT.json and prints
its verdict table. See 'sseharness report -h'.`)
	maxSize := maxFileSizeFlag(fs)
	files, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(files) < 2 {
		return usageError(env, "report merge", "want OUT.json and at least one SHARD.json, got %d arguments", len(files))
	}
	outPath, shardPaths := files[0], files[1:]
	for _, p := range shardPaths {
		if p == outPath {
			return usageError(env, "report merge", "OUT.json %s is also given as a shard; it would be overwritten", outPath)
		}
	}
	var shards []*report.Result
	for _, p := range shardPaths {
		r, err := loadResult(p, maxSize)
		if err != nil {
			return fileError(env, "report merge", err)
		}
		shards = append(shards, r)
	}
	merged, err := report.Merge(shards)
	if err != nil {
		return fileError(env, "report merge", err)
	}
	if err := report.Save(outPath, merged); err != nil {
		return harnessError(env, "report merge", err)
	}
	fmt.Fprintf(env.Stderr, "merged %d shard results into %s: %s\n", len(shards), outPath, merged.Verdict)
	for _, s := range merged.Scenarios {
		line := fmt.Sprintf("%-22s %s", s.Name, s.Verdict)
		if failed := s.FailedChecks(); len(failed) > 0 {
			line += "  failed: " + strings.Join(failed, ", ")
		}
		fmt.Fprintln(env.Stdout, line)
		if n := s.OverlapNote(); n != "" {
			fmt.Fprintln(env.Stdout, "  "+n)
		}
	}
	if n := merged.StartNote(); n != "" {
		fmt.Fprintln(env.Stdout, n)
	}
	return exitFor(merged)
}

// byteSize is a flag of a size in bytes: a plain count, or a number with a unit (KiB,
// MiB, GiB binary; KB, MB, GB decimal; B).
type byteSize int64

var byteUnits = []struct {
	suffix string
	factor float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

func (b *byteSize) String() string {
	for _, u := range byteUnits[:3] {
		if int64(*b) > 0 && int64(*b)%int64(u.factor) == 0 && int64(*b)/int64(u.factor) < 1024 {
			return strconv.FormatInt(int64(*b)/int64(u.factor), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Set(v string) error {
	num, factor := strings.TrimSpace(v), 1.0
	for _, u := range byteUnits {
		if len(num) > len(u.suffix) && strings.EqualFold(num[len(num)-len(u.suffix):], u.suffix) {
			num, factor = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.factor
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || f*factor < 1 || f*factor > math.MaxInt64/2 {
		return fmt.Errorf("want a positive size such as 64MiB, 200MB or 1048576")
	}
	*b = byteSize(f * factor)
	return nil
}

// maxFileSizeFlag defines --max-file-size on fs, defaulting to report.DefaultMaxFileSize.
func maxFileSizeFlag(fs *flag.FlagSet) *byteSize {
	size := byteSize(report.DefaultMaxFileSize)
	fs.Var(&size, "max-file-size", "refuse result files larger than this `size` without reading them (KiB, MiB, GiB, KB, MB, GB or bytes)")
	return &size
}

// loadResult reads a result file of at most maxSize bytes; a file over it is refused
// with a hint at the flag that raises the limit.
func loadResult(path string, maxSize *byteSize) (*report.Result, error) {
	r, err := report.LoadMax(path, int64(*maxSize))
	if tooLarge := (*report.FileTooLargeError)(nil); errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("%w (raise the limit with --max-file-size)", err)
	}
	return r, err
}

// fileError prints one line about a bad input file and returns ExitUsage: the file is
// what the user gave, not a failure of the harness.
func fileError(env *Env, cmd string, err error) int {
	fmt.Fprintf(env.Stderr, "sseharness %s: %v\n", cmd, err)
	return ExitUsage
}

// writeOutput renders into memory and writes it to path, or to standard output when path
// is empty, so that a render error never leaves half a file.
func writeOutput(env *Env, path string, render func(*strings.Builder) error) error {
	var b strings.Builder
	if err := render(&b); err != nil {
		return err
	}
	if path == "" {
		_, err := fmt.Fprint(env.Stdout, b.String())
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(b.String())
	return errors.Join(werr, f.Close())
}

// parseInterspersed parses flags that may come before, between or after positional
// arguments ('report FILE --format html'), which flag.Parse alone stops at. It returns
// the positional arguments, or ok=false with the exit code as parseFlags does. After
// "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) (positional []string, code int, ok bool) {
	for {
		dashdash := -1
		for i, a := range args {
			if a == "--" {
				dashdash = i
				break
			}
		}
		if code, ok := parseFlags(fs, args); !ok {
			return nil, code, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, 0, true
		}
		// flag consumed a "--" when rest starts right after it: all of rest is positional.
		if dashdash >= 0 && len(args)-dashdash-1 == len(rest) {
			return append(positional, rest...), 0, true
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

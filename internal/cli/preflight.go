package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// runPreflight is what `run` checks after its flags and before any load starts, so that a
// run that could not deliver its result is refused at once (exit 2), not after minutes
// of load.
type runPreflight struct {
	// Target is --target; empty for the embedded reference server.
	Target string
	// Outputs are the files the run writes, by the flag that names them; an empty Path
	// is not written.
	Outputs []outputFile
}

// outputFile is one file a command writes, and the flag that names it.
type outputFile struct {
	Flag, Path string
}

// check reports every problem at once, in one line: a target nobody can connect to
// (validateTarget), and each output file that cannot be written.
func (p runPreflight) check() error {
	var errs []string
	if p.Target != "" {
		if err := validateTarget("--target", p.Target); err != nil {
			errs = append(errs, err.Error())
		}
	}
	seen := map[string]string{}
	for _, o := range p.Outputs {
		if o.Path == "" {
			continue
		}
		abs, err := filepath.Abs(o.Path)
		if err == nil {
			if other, dup := seen[abs]; dup {
				errs = append(errs, fmt.Sprintf("%s %s is also %s: one would overwrite the other", o.Flag, o.Path, other))
				continue
			}
			seen[abs] = o.Flag
		}
		if err := checkWritable(o.Path); err != nil {
			errs = append(errs, fmt.Sprintf("%s %s: %v", o.Flag, o.Path, err))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// checkWritable tells whether path can be written the way report.Save writes it: a
// temporary file in its directory, renamed over path. It creates such a file and removes
// it at once, so a run refused later leaves nothing behind, and path itself is never
// touched.
func checkWritable(path string) error {
	if strings.HasSuffix(path, string(filepath.Separator)) {
		return errors.New("names a directory, not a file")
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return errors.New("is a directory")
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("directory %s: %v", dir, pathErr(err))
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".preflight-*")
	if err != nil {
		return fmt.Errorf("cannot write in directory %s: %v", dir, pathErr(err))
	}
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(cerr, rerr); err != nil {
		return fmt.Errorf("cannot write in directory %s: %v", dir, pathErr(err))
	}
	return nil
}

// pathErr drops the path from an *fs.PathError, which the message names already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
